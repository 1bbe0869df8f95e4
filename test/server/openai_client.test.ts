/** The official `openai` npm client against a running seedvl server. */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startTestServer, pngDataUrl, type TestServer } from './_server.ts';
import { ids, IM_END, THINK, END_THINK } from '../generation/_fixtures.ts';

let srv: TestServer;
let client: OpenAI;
// The scripted answer: a reasoning block, then an answer with a box.
const ANSWER = [THINK, ...ids('R1'), END_THINK, ...ids('cat <bbox>100 200 300 400</bbox>'), IM_END];

before(async () => {
  srv = await startTestServer({ answer: ANSWER });
  client = new OpenAI({ baseURL: `${srv.url}/v1`, apiKey: 'unused', maxRetries: 0, timeout: 20_000 });
});
after(async () => srv.close());

type SeedMessage = { content: string | null; reasoning_content?: string };
type SeedDelta = { content?: string | null; reasoning_content?: string };

test('models and health', async () => {
  const models = await client.models.list();
  assert.deepEqual(models.data.map((m) => m.id), ['tiny-test']);
  const h = await (await fetch(`${srv.url}/health`)).json();
  assert.equal(h.status, 'ok');
});

test('non-streaming, with an image and thinking on: reasoning_content, content and usage', async () => {
  const image = await pngDataUrl();
  const r = await client.chat.completions.create({
    model: 'tiny-test',
    messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: image } }, { type: 'text', text: 'Where is the cat?' }] }],
    temperature: 0,
    // @ts-expect-error Seed extension
    thinking: { type: 'enabled' },
  });
  const m = r.choices[0]!.message as unknown as SeedMessage;
  assert.equal(m.reasoning_content, 'R1');
  assert.equal(m.content, 'cat <bbox>100 200 300 400</bbox>');
  assert.equal(r.choices[0]!.finish_reason, 'stop');
  assert.equal(r.usage!.completion_tokens, ANSWER.length - 1); // the end-of-turn token is not output
  assert.ok(r.usage!.prompt_tokens > 20, 'the image block is part of the prompt');
  assert.equal(r.usage!.total_tokens, r.usage!.prompt_tokens + r.usage!.completion_tokens);
});

test('streaming equals non-streaming; thinking off changes the prompt', async () => {
  const ask = (thinking: 'enabled' | 'disabled') => ({
    model: 'tiny-test',
    messages: [{ role: 'user' as const, content: 'Hello' }],
    temperature: 0,
    thinking: { type: thinking },
  });
  const stream = await client.chat.completions.create({ ...ask('enabled'), stream: true, stream_options: { include_usage: true } });
  let reasoning = '';
  let content = '';
  let chunks = 0;
  let usage = null;
  let finish = null;
  for await (const c of stream) {
    chunks++;
    if (c.usage) usage = c.usage;
    for (const ch of c.choices) {
      const d = ch.delta as SeedDelta;
      reasoning += d.reasoning_content ?? '';
      content += d.content ?? '';
      finish = ch.finish_reason ?? finish;
    }
  }
  assert.ok(chunks > 5, `token-by-token chunks (${chunks})`);
  const whole = await client.chat.completions.create(ask('enabled'));
  const m = whole.choices[0]!.message as unknown as SeedMessage;
  assert.deepEqual({ reasoning, content }, { reasoning: m.reasoning_content, content: m.content });
  assert.equal(finish, 'stop');
  assert.deepEqual(usage, whole.usage);
  const off = await client.chat.completions.create(ask('disabled'));
  assert.notEqual(off.usage!.prompt_tokens, whole.usage!.prompt_tokens, 'the mode prompt differs');
});

test('concurrent requests get the answers they get alone', async () => {
  // A model without a script: each prompt has its own (random but deterministic) greedy answer.
  const plain = await startTestServer({ seed: 3 });
  try {
    const c = new OpenAI({ baseURL: `${plain.url}/v1`, apiKey: 'x', maxRetries: 0 });
    const prompts = ['alpha', 'beta gamma', 'delta', 'the quick brown fox', 'zeta'];
    const ask = (p: string) => c.chat.completions.create({ messages: [{ role: 'user', content: p }], temperature: 0, max_tokens: 12, model: 'tiny-test' });
    const alone = [];
    for (const p of prompts) alone.push((await ask(p)).choices[0]!.message.content);
    const steps = plain.engine.scheduler.stats.steps;
    const together = await Promise.all(prompts.map(ask));
    assert.deepEqual(together.map((r) => r.choices[0]!.message.content), alone);
    assert.ok(plain.engine.scheduler.stats.steps - steps < prompts.length * 11, 'the requests shared decode steps');
    assert.ok(new Set(alone).size > 1, 'different prompts, different answers');
    // Seeded sampling through the API is reproducible.
    const s1 = await c.chat.completions.create({ messages: [{ role: 'user', content: 'x' }], temperature: 1, seed: 9, max_tokens: 10, model: 'tiny-test' });
    const s2 = await c.chat.completions.create({ messages: [{ role: 'user', content: 'x' }], temperature: 1, seed: 9, max_tokens: 10, model: 'tiny-test' });
    assert.equal(s1.choices[0]!.message.content, s2.choices[0]!.message.content);
  } finally {
    await plain.close();
  }
});

test('the client sees 4xx errors with the field named', async () => {
  await assert.rejects(
    client.chat.completions.create({ model: 'tiny-test', messages: [{ role: 'user', content: 'x' }], temperature: 5 }),
    (e: InstanceType<typeof OpenAI.APIError>) => e.status === 400 && /temperature/.test(e.message),
  );
  await assert.rejects(
    client.chat.completions.create({ model: 'tiny-test', messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'data:image/png;base64,AAAA' } }] }] }),
    (e: InstanceType<typeof OpenAI.APIError>) => e.status === 400 && /decode|image/i.test(e.message),
  );
});
