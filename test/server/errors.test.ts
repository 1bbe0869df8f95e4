/** Malformed requests, limits, 429 when full, and disconnects cancelling generation. */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, pngDataUrl, waitFor, type TestServer } from './_server.ts';
import { ids } from '../generation/_fixtures.ts';

/** A scripted endless answer ("aaaa…"), so a request runs until cancelled or out of tokens. */
const ENDLESS = new Array<number>(4096).fill(ids('a')[0]!);

let srv: TestServer;
before(async () => {
  srv = await startTestServer({}, { bodyLimit: 256 * 1024, limits: { maxImages: 2 } });
});
after(async () => srv.close());

async function post(body: unknown, raw = false): Promise<{ status: number; json: { error?: { message: string; param: string | null; type: string } } }> {
  const res = await fetch(`${srv.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: raw ? (body as string) : JSON.stringify(body),
  });
  return { status: res.status, json: await res.json() };
}

const user = (content: unknown) => ({ messages: [{ role: 'user', content }] });

test('malformed and invalid requests get 400 naming the field; the server keeps serving', async () => {
  const png = await pngDataUrl(8, 8);
  const cases: [unknown, RegExp, boolean?][] = [
    ['{"messages": [', /not valid JSON/, true],
    ['[1, 2]', /must be a JSON object/, true],
    [{}, /messages/],
    [{ messages: [] }, /messages.*at least one/],
    [{ messages: [{ role: 'robot', content: 'x' }] }, /messages\.0\.role/],
    [{ ...user('x'), temperature: 'hot' }, /'temperature'/],
    [{ ...user('x'), max_tokens: 0 }, /'max_tokens'/],
    [{ ...user('x'), top_p: 1.5 }, /'top_p'/],
    [{ ...user('x'), stop: 5 }, /'stop'/],
    [{ ...user('x'), seed: 1.5 }, /'seed'/],
    [{ ...user('x'), stream: 'yes' }, /'stream'/],
    [{ ...user('x'), thinking: { type: 'sometimes' } }, /'thinking\.type'/],
    [{ ...user('x'), n: 2 }, /'n'.*n = 1/],
    [user([{ type: 'image_url', image_url: { url: 42 } }]), /messages\.0\.content\.0\.image_url/],
    [user([{ type: 'audio', audio: {} }]), /messages\.0\.content\.0\.type/],
    [user([{ type: 'image_url', image_url: { url: 'data:image/png;base64,AAAA' } }]), /image|decode/i],
    [user([{ type: 'image_url', image_url: { url: 'data:text/plain;base64,aGVsbG8gd29ybGQ=' } }]), /image|format|decode/i],
    [user([{ type: 'image_url', image_url: { url: 'https://example.com/cat.png' } }]), /'messages\.0\.content\.0\.image_url\.url'.*allow-network/],
    [user([{ type: 'image_url', image_url: { url: '/etc/passwd' } }]), /local file paths are disabled/],
    [user([1, 2, 3].map(() => ({ type: 'image_url', image_url: { url: png } }))), /too many images: 3.*at most 2/],
    [user([{ type: 'video_url', video_url: { url: 'data:video/mp4;base64,AAAA' } }]), /video_url/],
  ];
  for (const [body, re, raw] of cases) {
    const r = await post(body, raw);
    assert.equal(r.status, 400, `${JSON.stringify(body).slice(0, 80)} → ${r.status} ${JSON.stringify(r.json)}`);
    assert.match(r.json.error!.message, re, JSON.stringify(body).slice(0, 80));
    assert.equal(r.json.error!.type, 'invalid_request_error');
  }
  // Unknown extra fields of any type are ignored, as OpenAI clients send extras.
  const ok = await post({ ...user('hi'), user: 'me', logprobs: false, max_tokens: 3 });
  assert.equal(ok.status, 200);
  // Too large a body: 413.
  const big = await post({ ...user('x'.repeat(300 * 1024)) });
  assert.equal(big.status, 413);
  assert.match(big.json.error!.message, /larger than this server's limit/);
  // Unknown route: 404 in the same error shape.
  const nf = await fetch(`${srv.url}/v1/nothing`);
  assert.equal(nf.status, 404);
  assert.equal(((await nf.json()) as { error: { code: string } }).error.code, 'not_found');
  assert.equal((await fetch(`${srv.url}/health`)).status, 200);
  assert.equal(srv.model.liveCaches.size, 0);
});

test('a prompt longer than the context is refused with 400', async () => {
  const r = await post({ ...user('word '.repeat(3000)) });
  assert.equal(r.status, 400);
  assert.match(r.json.error!.message, /tokens/);
});

test('a disconnecting client cancels its generation', async () => {
  const decodes = { n: 0 };
  const s = await startTestServer({ onDecode: () => decodes.n++, maxSequenceLength: 4096, answer: ENDLESS });
  try {
    const ac = new AbortController();
    const res = await fetch(`${s.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ ...user('go on forever'), stream: true, max_tokens: 3000, temperature: 0 }),
      signal: ac.signal,
    });
    const reader = res.body!.getReader();
    await reader.read();
    await reader.read();
    ac.abort();
    await waitFor(() => s.engine.scheduler.load.running === 0, 'the sequence to leave the batch');
    assert.ok(decodes.n < 1000, `generation stopped early (${decodes.n} decode steps of 3000)`);
    assert.equal(s.model.liveCaches.size, 0, 'its cache was freed');
    // Non-streaming too: the request is cancelled when its connection closes.
    const ac2 = new AbortController();
    const p = fetch(`${s.url}/v1/chat/completions`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ ...user('again'), max_tokens: 3000 }), signal: ac2.signal,
    }).catch(() => null);
    await waitFor(() => s.engine.scheduler.load.running === 1, 'the second request to start');
    const before = decodes.n;
    ac2.abort();
    await p;
    await waitFor(() => s.engine.scheduler.load.running === 0, 'the non-streaming request to be cancelled');
    assert.ok(decodes.n - before < 1000);
  } finally {
    await s.close();
  }
});

test('429 when the server is full, and it serves again afterwards', async () => {
  const s = await startTestServer({ maxSequenceLength: 4096, answer: ENDLESS }, { maxConcurrent: 1 });
  try {
    const ac = new AbortController();
    const first = await fetch(`${s.url}/v1/chat/completions`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ ...user('long'), stream: true, max_tokens: 3000 }), signal: ac.signal,
    });
    const reader = first.body!.getReader();
    await reader.read();
    const second = await fetch(`${s.url}/v1/chat/completions`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(user('short')),
    });
    assert.equal(second.status, 429);
    assert.match(((await second.json()) as { error: { message: string } }).error.message, /busy/);
    ac.abort();
    await waitFor(() => s.engine.scheduler.load.running === 0, 'the first request to end');
    let status = 429;
    for (let i = 0; i < 100 && status === 429; i++) {
      status = (await fetch(`${s.url}/v1/chat/completions`, {
        method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ ...user('short'), max_tokens: 2 }),
      })).status;
      if (status === 429) await new Promise((r) => setTimeout(r, 10));
    }
    assert.equal(status, 200);
  } finally {
    await s.close();
  }
});
