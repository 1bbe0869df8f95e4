/** Starts a seedvl server on 127.0.0.1:0 around a tiny test model. */
import sharp from 'sharp';
import { Engine } from '../../src/generation/engine.ts';
import { LocalProvider } from '../../src/providers/local.ts';
import { createServer, type ServerOptions } from '../../src/server/app.ts';
import { tokenizer, tinyModel } from '../generation/_fixtures.ts';
import type { TinyLMOptions } from '../generation/_tiny_lm.ts';

export interface TestServer {
  url: string;
  engine: Engine;
  model: ReturnType<typeof tinyModel>;
  close(): Promise<void>;
}

export async function startTestServer(model: Partial<TinyLMOptions> = {}, server: Partial<ServerOptions> = {}): Promise<TestServer> {
  const m = tinyModel({ ignoreVision: true, maxSequenceLength: 2048, ...model });
  const engine = new Engine(m, tokenizer, { maxBatch: 4, defaultMaxTokens: 64 });
  const app = createServer({
    provider: new LocalProvider(engine, { modelId: 'tiny-test' }),
    health: () => ({ ...engine.scheduler.load }),
    ...server,
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const addr = app.server.address();
  if (!addr || typeof addr === 'string') throw new Error('no address');
  return { url: `http://127.0.0.1:${addr.port}`, engine, model: m, close: () => app.close() };
}

/** A small PNG as a data URL. */
export async function pngDataUrl(width = 64, height = 48): Promise<string> {
  const raw = Buffer.alloc(width * height * 3);
  for (let i = 0; i < raw.length; i++) raw[i] = (i * 37) % 251;
  const png = await sharp(raw, { raw: { width, height, channels: 3 } }).png().toBuffer();
  return `data:image/png;base64,${png.toString('base64')}`;
}

/** Polls `cond` (bounded) until true. */
export async function waitFor(cond: () => boolean, what: string, ms = 5000): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
