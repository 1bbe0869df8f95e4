/**
 * `seedvl serve`: the OpenAI-compatible HTTP API and the playground, around a
 * local model (or, with --remote, in front of another endpoint).
 */
import { LocalProvider } from '../providers/local.ts';
import { RemoteProvider } from '../providers/remote.ts';
import type { Provider } from '../providers/types.ts';
import { createServer } from '../server/app.ts';
import { MODEL_OPTIONS, MODEL_HELP, UsageError, parse, num, loadFromArgs } from './model_args.ts';

const HELP = `usage: seedvl serve (--model DIR | --preset NAME | --remote URL) [options]

Serves POST /v1/chat/completions (OpenAI schema + Seed's thinking switch and
reasoning_content), GET /v1/models, GET /health, and the playground at /.

  --host HOST              listen address (default 127.0.0.1)
  --port N                 port (default 8080; 0 = any free port)
  --model-id ID            the model id clients see (default: the model's name)
  --allow-network          fetch http(s) image/video URLs in requests
  --allow-local-files      read local paths in requests (only for trusted clients)
  --max-concurrent N       requests at once before answering 429 (default 16)
  --max-images N           images per request (default 8)
  --max-frames N           frames one video may sample (default 128)
  --body-limit MB          largest request body (default 32)
  --remote URL             serve a remote OpenAI-compatible endpoint instead of a local model
  --api-key KEY            key for --remote (default $SEEDVL_API_KEY)
  --log                    log requests

${MODEL_HELP}`;

export async function serveCommand(argv: string[]): Promise<number> {
  let a;
  try {
    a = parse(argv, {
      ...MODEL_OPTIONS,
      host: { type: 'string' }, port: { type: 'string' }, 'model-id': { type: 'string' },
      'allow-network': { type: 'boolean' }, 'allow-local-files': { type: 'boolean' },
      'max-concurrent': { type: 'string' }, 'max-images': { type: 'string' }, 'max-frames': { type: 'string' },
      'body-limit': { type: 'string' }, remote: { type: 'string' }, 'api-key': { type: 'string' }, log: { type: 'boolean' },
    }, false);
    if (a.values.help) {
      console.log(HELP);
      return 0;
    }
  } catch (e) {
    console.error(`seedvl serve: ${(e as Error).message}\n\n${HELP}`);
    return 2;
  }
  const v = a.values;
  let provider: Provider;
  let health: () => Record<string, unknown> = () => ({});
  let dispose = (): void => undefined;
  let port: number, maxConcurrent: number, maxImages: number | undefined, maxFrames: number | undefined, bodyMb: number;
  try {
    port = num(v.port, 'port', { int: true, min: 0, max: 65535 }) ?? 8080;
    maxConcurrent = num(v['max-concurrent'], 'max-concurrent', { int: true, min: 1 }) ?? 16;
    maxImages = num(v['max-images'], 'max-images', { int: true, min: 0 });
    maxFrames = num(v['max-frames'], 'max-frames', { int: true, min: 1 });
    bodyMb = num(v['body-limit'], 'body-limit', { min: 0.001 }) ?? 32;
    if (v.remote) {
      provider = new RemoteProvider({ baseURL: v.remote, ...(v['api-key'] ?? process.env.SEEDVL_API_KEY ? { apiKey: v['api-key'] ?? process.env.SEEDVL_API_KEY } : {}), ...(v['model-id'] ? { model: v['model-id'] } : {}) });
    } else {
      const { engine } = await loadFromArgs(v);
      provider = new LocalProvider(engine, {
        ...(v['model-id'] ? { modelId: v['model-id'] } : {}),
        media: { allowNetwork: !!v['allow-network'] },
      });
      health = () => ({ model: engine.name, ...engine.scheduler.load });
      dispose = () => engine.dispose();
    }
  } catch (e) {
    console.error(`seedvl serve: ${(e as Error).message}`);
    return e instanceof UsageError ? 2 : 1;
  }
  const app = createServer({
    provider,
    maxConcurrent,
    bodyLimit: Math.round(bodyMb * 1024 * 1024),
    limits: {
      allowNetwork: !!v['allow-network'],
      allowLocalFiles: !!v['allow-local-files'],
      ...(maxImages !== undefined ? { maxImages } : {}),
      ...(maxFrames !== undefined ? { maxFrames } : {}),
    },
    health,
    logger: !!v.log,
  });
  const host = v.host ?? '127.0.0.1';
  try {
    await app.listen({ host, port });
  } catch (e) {
    console.error(`seedvl serve: cannot listen on ${host}:${port}: ${(e as Error).message}`);
    dispose();
    return 1;
  }
  const addr = app.server.address();
  const actual = addr && typeof addr === 'object' ? addr.port : port;
  console.log(`seedvl serving on http://${host}:${actual}  (API: /v1/chat/completions, playground: /)`);
  await new Promise<void>((resolve) => {
    const stop = (): void => resolve();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  console.error('shutting down');
  await app.close();
  dispose();
  return 0;
}
