/**
 * The HTTP API (fastify): OpenAI-compatible chat completions with Seed's
 * `thinking` switch and `reasoning_content`, model listing, health, and the
 * playground page. Thin: validate, check limits, call the provider, format.
 *
 *   POST /v1/chat/completions   JSON or SSE (`stream: true`)
 *   GET  /v1/models
 *   GET  /health
 *   GET  /                      the playground
 *
 * Every error is `{ error: { message, type, param, code } }` with a 4xx
 * status for the request's faults (400 invalid, 413 too large, 429 busy).
 * A client that disconnects cancels its generation.
 */
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { ProviderError, type Provider } from '../providers/types.ts';
import { toProviderError } from '../providers/local.ts';
import { parseChatBody, RequestValidationError } from './schema.ts';
import { checkMediaLimits, DEFAULT_LIMITS, type MediaLimits } from './limits.ts';
import { playgroundAssets } from './playground.ts';

export interface ServerOptions {
  provider: Provider;
  /** Largest request body in bytes (default 32 MiB). */
  bodyLimit?: number;
  /** Requests handled at once; more get 429 (default 16). */
  maxConcurrent?: number;
  limits?: Partial<MediaLimits>;
  /** Serve the playground at / (default true). */
  playground?: boolean;
  /** Extra fields for GET /health (e.g. the scheduler load). */
  health?: () => Record<string, unknown>;
  /** Log requests (fastify's logger). */
  logger?: boolean;
}

function sendError(reply: FastifyReply, status: number, message: string, code: string, param: string | null = null): FastifyReply {
  const type = status === 429 ? 'rate_limit_error' : status >= 500 ? 'server_error' : 'invalid_request_error';
  return reply.code(status).send({ error: { message, type, param, code } });
}

export function createServer(o: ServerOptions): FastifyInstance {
  const app = Fastify({ bodyLimit: o.bodyLimit ?? 32 * 1024 * 1024, logger: o.logger ?? false });
  const limits: MediaLimits = { ...DEFAULT_LIMITS, ...o.limits };
  const maxConcurrent = o.maxConcurrent ?? 16;
  let inFlight = 0;

  app.setErrorHandler((err: Error & { statusCode?: number; code?: string }, _req, reply) => {
    const status = err.statusCode && err.statusCode >= 400 ? err.statusCode : 500;
    let message = err.message;
    if (err.code === 'FST_ERR_CTP_INVALID_JSON_BODY' || /JSON/.test(err.name) || err instanceof SyntaxError) message = `the request body is not valid JSON: ${err.message}`;
    if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') message = `the request body is larger than this server's limit of ${app.initialConfig.bodyLimit} bytes`;
    return sendError(reply, status, message, err.code ?? 'error', status === 400 ? 'body' : null);
  });
  app.setNotFoundHandler((req, reply) => sendError(reply, 404, `no route ${req.method} ${req.url}`, 'not_found'));

  app.get('/health', async () => ({ status: 'ok', in_flight: inFlight, ...(o.health?.() ?? {}) }));

  app.get('/v1/models', async (_req, reply) => {
    try {
      return { object: 'list', data: await o.provider.listModels() };
    } catch (e) {
      const pe = toProviderError(e);
      return sendError(reply, pe.status, pe.message, pe.code);
    }
  });

  app.post('/v1/chat/completions', async (req: FastifyRequest, reply: FastifyReply) => {
    let parsed;
    try {
      parsed = parseChatBody(req.body);
    } catch (e) {
      if (e instanceof RequestValidationError) return sendError(reply, 400, e.message, 'invalid_value', e.param);
      throw e;
    }
    if (inFlight >= maxConcurrent) {
      return sendError(reply, 429, `the server is busy (${maxConcurrent} requests in progress); retry later`, 'busy');
    }
    inFlight++;
    // A client that goes away cancels its generation.
    const ac = new AbortController();
    const onClose = (): void => {
      if (!reply.raw.writableFinished) ac.abort(new Error('client disconnected'));
    };
    reply.raw.on('close', onClose);
    try {
      await checkMediaLimits(parsed.request, limits);
      if (parsed.stream) return await streamCompletion(reply, o.provider, parsed.request, ac.signal, parsed.includeUsage);
      const completion = await o.provider.complete(parsed.request, { signal: ac.signal });
      return reply.send(completion);
    } catch (e) {
      if (e instanceof RequestValidationError) return sendError(reply, 400, e.message, 'invalid_value', e.param);
      const pe = toProviderError(e);
      if (reply.sent || reply.raw.headersSent) return reply;
      return sendError(reply, pe.status, pe.message, pe.code, pe.param ?? null);
    } finally {
      inFlight--;
      if (!parsed.stream) reply.raw.off('close', onClose);
    }
  });

  if (o.playground ?? true) {
    const assets = playgroundAssets();
    for (const [path, a] of Object.entries(assets)) {
      app.get(path, async (_req, reply) => reply.type(a.type).header('cache-control', 'no-cache').send(a.body));
    }
  }
  return app;
}

/** Server-sent events: one `data:` line per chunk, then `data: [DONE]`. */
async function streamCompletion(reply: FastifyReply, provider: Provider, request: Parameters<Provider['stream']>[0], signal: AbortSignal,
  includeUsage: boolean): Promise<FastifyReply> {
  const it = provider.stream(request, { signal })[Symbol.asyncIterator]();
  // Pull the first chunk before committing to a 200, so request errors (bad image, …) are still proper 4xx answers.
  const first = await it.next();
  reply.hijack();
  const res = reply.raw;
  res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', connection: 'keep-alive', 'x-accel-buffering': 'no' });
  const write = (obj: unknown): void => {
    if (!res.destroyed) res.write(`data: ${JSON.stringify(obj)}\n\n`);
  };
  try {
    for (let r = first; !r.done; r = await it.next()) {
      const c = r.value;
      if (c.usage && c.choices.every((ch) => ch.finish_reason)) {
        // OpenAI puts usage in its own final chunk (choices: []) when include_usage is set.
        const { usage, ...rest } = c;
        write(rest);
        if (includeUsage) write({ ...rest, choices: [], usage });
      } else write(c);
      if (res.destroyed) break;
    }
    if (!res.destroyed) res.write('data: [DONE]\n\n');
  } catch (e) {
    const pe = e instanceof ProviderError ? e : toProviderError(e);
    write({ error: { message: pe.message, type: pe.status >= 500 ? 'server_error' : 'invalid_request_error', code: pe.code } });
  } finally {
    await it.return?.();
    res.end();
  }
  return reply;
}
