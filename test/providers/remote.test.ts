/**
 * The remote provider against a local mock of the hosted API (records what it
 * receives, answers with reasoning_content), and against a real seedvl server.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { RemoteProvider } from '../../src/providers/remote.ts';
import { LocalProvider } from '../../src/providers/local.ts';
import { collectStream, ProviderError } from '../../src/providers/types.ts';
import { startTestServer, pngDataUrl } from '../server/_server.ts';
import { ids, IM_END, THINK, END_THINK } from '../generation/_fixtures.ts';

interface Recorded {
  headers: IncomingMessage['headers'];
  body: Record<string, unknown>;
}

/** A mock of the hosted chat API: canned answers, every request recorded. */
async function mockApi(): Promise<{ url: string; seen: Recorded[]; close(): Promise<void> }> {
  const seen: Recorded[] = [];
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    let data = '';
    req.on('data', (c) => (data += c));
    req.on('end', () => {
      if (req.url === '/api/v3/models') {
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ object: 'list', data: [{ id: 'doubao-1-5-thinking-vision-pro-250428', object: 'model', created: 0, owned_by: 'x' }] }));
        return;
      }
      const body = JSON.parse(data) as Record<string, unknown>;
      seen.push({ headers: req.headers, body });
      if (req.headers.authorization !== 'Bearer sk-test') {
        res.writeHead(401, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { message: 'bad key' } }));
        return;
      }
      const thinking = (body.thinking as { type: string } | undefined)?.type !== 'disabled';
      if (body.stream) {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        const send = (delta: object, finish: string | null = null) =>
          res.write(`data: ${JSON.stringify({ id: 'c1', object: 'chat.completion.chunk', created: 1, model: 'm', choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`);
        send({ role: 'assistant', content: '' });
        if (thinking) {
          send({ reasoning_content: 'Look at ' });
          send({ reasoning_content: 'the frames.' });
        }
        send({ content: 'A dog ' });
        send({ content: 'runs.' }, 'stop');
        res.end('data: [DONE]\n\n');
      } else {
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({
          id: 'c2', object: 'chat.completion', created: 1, model: 'm',
          choices: [{ index: 0, message: { role: 'assistant', content: 'A dog runs.', ...(thinking ? { reasoning_content: 'Look at the frames.' } : {}) }, finish_reason: 'stop' }],
          usage: { prompt_tokens: 10, completion_tokens: 4, total_tokens: 14 },
        }));
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  return { url: `http://127.0.0.1:${port}/api/v3`, seen, close: () => new Promise((r) => server.close(() => r())) };
}

async function frame(color: number): Promise<Buffer> {
  return sharp(Buffer.alloc(56 * 56 * 3, color), { raw: { width: 56, height: 56, channels: 3 } }).png().toBuffer();
}

test('remote provider: thinking switch, images as data URLs, video as timestamped frames, reasoning_content read back', async () => {
  const api = await mockApi();
  const dir = mkdtempSync(join(tmpdir(), 'seedvl-remote-'));
  try {
    const pngPath = join(dir, 'a.png');
    writeFileSync(pngPath, await frame(200));
    const p = new RemoteProvider({ baseURL: api.url, apiKey: 'sk-test', model: 'doubao-1-5-thinking-vision-pro-250428' });
    assert.equal((await p.listModels())[0]!.id, 'doubao-1-5-thinking-vision-pro-250428');
    const messages = [{
      role: 'user' as const,
      content: [
        { type: 'image_url' as const, image_url: { url: pngPath } },
        { type: 'video_frames' as const, frames: [{ image: await frame(10), t: 0 }, { image: await frame(90), t: 0.25 }, { image: await frame(170), t: 1.5 }] },
        { type: 'text' as const, text: 'What happens?' },
      ],
    }];
    const r = await p.complete({ messages, thinking: { type: 'enabled' }, temperature: 0.3 });
    assert.equal(r.choices[0]!.message.content, 'A dog runs.');
    assert.equal(r.choices[0]!.message.reasoning_content, 'Look at the frames.');
    const sent = api.seen[0]!;
    assert.equal(sent.headers.authorization, 'Bearer sk-test');
    assert.deepEqual(sent.body.thinking, { type: 'enabled' });
    assert.equal(sent.body.model, 'doubao-1-5-thinking-vision-pro-250428');
    assert.equal(sent.body.stream, false);
    assert.equal(sent.body.temperature, 0.3);
    const parts = (sent.body.messages as { content: { type: string; text?: string; image_url?: { url: string; detail: string } }[] }[])[0]!.content;
    // The local file became a data URL; each frame is "[t second]" then a JPEG data URL, as in the cookbook.
    assert.match(parts[0]!.image_url!.url, /^data:image\/png;base64,/);
    assert.equal(parts[0]!.image_url!.detail, 'high');
    assert.deepEqual(parts.slice(1, 7).map((x) => x.type), ['text', 'image_url', 'text', 'image_url', 'text', 'image_url']);
    assert.deepEqual([parts[1]!.text, parts[3]!.text, parts[5]!.text], ['[0.0 second]', '[0.2 second]', '[1.5 second]']);
    assert.match(parts[2]!.image_url!.url, /^data:image\/jpeg;base64,/);
    assert.equal(parts[2]!.image_url!.detail, 'high');
    assert.deepEqual(parts[7], { type: 'text', text: 'What happens?' });

    // Streaming: reasoning and content deltas arrive separately.
    let reasoning = '';
    let content = '';
    for await (const c of p.stream({ messages: [{ role: 'user', content: 'hi' }], thinking: { type: 'enabled' } })) {
      reasoning += c.choices[0]?.delta.reasoning_content ?? '';
      content += c.choices[0]?.delta.content ?? '';
    }
    assert.deepEqual([reasoning, content], ['Look at the frames.', 'A dog runs.']);
    assert.equal(api.seen.at(-1)!.body.stream, true);
    const off = await p.complete({ messages: [{ role: 'user', content: 'hi' }], thinking: { type: 'disabled' } });
    assert.deepEqual(api.seen.at(-1)!.body.thinking, { type: 'disabled' });
    assert.equal(off.choices[0]!.message.reasoning_content, undefined);
    // Errors carry the remote status.
    const bad = new RemoteProvider({ baseURL: api.url, apiKey: 'wrong' });
    await assert.rejects(bad.complete({ messages: [{ role: 'user', content: 'x' }] }), (e: ProviderError) => e.status === 401 && /bad key/.test(e.message));
    await assert.rejects(new RemoteProvider({ baseURL: 'http://127.0.0.1:9/v1' }).complete({ messages: [{ role: 'user', content: 'x' }] }), (e: ProviderError) => e.status === 502);
  } finally {
    rmSync(dir, { recursive: true, force: true });
    await api.close();
  }
});

test('remote provider against a seedvl server gives what the local provider gives', async () => {
  const answer = [THINK, ...ids('hm'), END_THINK, ...ids('<point>5 7</point>'), IM_END];
  const srv = await startTestServer({ answer });
  try {
    const remote = new RemoteProvider({ baseURL: `${srv.url}/v1`, model: 'tiny-test' });
    const local = new LocalProvider(srv.engine);
    const req = { messages: [{ role: 'user' as const, content: [{ type: 'image_url' as const, image_url: { url: await pngDataUrl() } }, { type: 'text' as const, text: 'point' }] }], temperature: 0 };
    const a = await remote.complete(req);
    const b = await local.complete(req);
    assert.deepEqual(a.choices[0]!.message, b.choices[0]!.message);
    assert.deepEqual(a.choices[0]!.message, { role: 'assistant', content: '<point>5 7</point>', reasoning_content: 'hm' });
    const streamed = await collectStream(remote.stream(req));
    assert.deepEqual(streamed.choices[0]!.message, a.choices[0]!.message);
    assert.deepEqual(streamed.usage, a.usage);
  } finally {
    await srv.close();
  }
});
