import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tidy, setNumThreads, numThreads } from '../../src/tensor/index.ts';
import { Scheduler, QueueFullError } from '../../src/generation/scheduler.ts';
import type { GenerationEvent } from '../../src/generation/sequence.ts';
import { tokenizer, tinyModel, prompt, chain, ids, EOS, THINK, END_THINK } from './_fixtures.ts';

/** Greedy decoding written out by hand against the model interface: the reference. */
function referenceGreedy(model: ReturnType<typeof tinyModel>, inputIds: Int32Array, n: number): number[] {
  const cache = model.createCache(inputIds.length + n);
  const out: number[] = [];
  try {
    let row = tidy(() => Array.from(model.prefill({ inputIds }, cache).data<Float32Array>()));
    for (let i = 0; i < n; i++) {
      let best = 0;
      for (let v = 1; v < row.length; v++) if (row[v]! > row[best]!) best = v;
      out.push(best);
      if (i + 1 < n) row = tidy(() => Array.from(model.decode(Int32Array.of(best), [cache]).data<Float32Array>()));
    }
  } finally {
    cache.dispose();
  }
  return out;
}

async function collect(events: AsyncIterable<GenerationEvent>): Promise<{ deltas: GenerationEvent[]; text: string }> {
  const deltas: GenerationEvent[] = [];
  let text = '';
  for await (const e of events) {
    deltas.push(e);
    if (e.type === 'delta') text += e.text;
  }
  return { deltas, text };
}

test('greedy generation equals a hand-written prefill/decode loop', async () => {
  const model = tinyModel();
  const s = new Scheduler(model, tokenizer);
  const p = prompt('The cat sat');
  const r = await s.generate({ inputs: p, sampling: { temperature: 0 }, maxTokens: 12 });
  assert.deepEqual(r.tokenIds, referenceGreedy(model, p.inputIds, 12));
  assert.equal(r.finishReason, 'length');
  assert.deepEqual(r.usage, { promptTokens: p.inputIds.length, completionTokens: 12, reasoningTokens: 0 });
  assert.equal(r.text, tokenizer.decode(r.tokenIds));
  assert.equal(model.liveCaches.size, 0, 'the cache is freed when the sequence ends');
});

test('concurrent requests are batched and each gets the answer it gets alone', async () => {
  let maxBatch = 0;
  const model = tinyModel({ onDecode: (b) => (maxBatch = Math.max(maxBatch, b)) });
  const s = new Scheduler(model, tokenizer, { maxBatch: 4 });
  const prompts = ['a', 'hello there', 'zzz', 'Seed VL', 'one more prompt'];
  const solo = [];
  for (const t of prompts) solo.push((await s.generate({ inputs: prompt(t), sampling: { temperature: 0 }, maxTokens: 10 })).tokenIds);
  const seeded = [];
  for (const t of prompts) seeded.push((await s.generate({ inputs: prompt(t), sampling: { temperature: 1, topP: 0.9, seed: 42 }, maxTokens: 10 })).tokenIds);
  maxBatch = 0;
  const stepsBefore = s.stats.steps;
  const together = await Promise.all(prompts.map((t) => s.generate({ inputs: prompt(t), sampling: { temperature: 0 }, maxTokens: 10 })));
  assert.deepEqual(together.map((r) => r.tokenIds), solo);
  assert.equal(maxBatch, 4, 'decode steps ran with the batch full');
  assert.ok(s.stats.steps - stepsBefore < 5 * 9, 'fewer steps than running the requests one by one');
  // Seeded sampling: the same draws alone and in a crowd.
  const crowd = await Promise.all(prompts.map((t) => s.generate({ inputs: prompt(t), sampling: { temperature: 1, topP: 0.9, seed: 42 }, maxTokens: 10 })));
  assert.deepEqual(crowd.map((r) => r.tokenIds), seeded);
  const other = await s.generate({ inputs: prompt(prompts[0]!), sampling: { temperature: 1, seed: 43 }, maxTokens: 10 });
  assert.notDeepEqual(other.tokenIds, seeded[0]);
  assert.equal(model.liveCaches.size, 0);
});

test('results do not depend on the thread count', async () => {
  const threads = numThreads();
  const runs = [];
  for (const t of [1, 2]) {
    setNumThreads(t);
    const s = new Scheduler(tinyModel(), tokenizer);
    runs.push((await s.generate({ inputs: prompt('threads'), sampling: { temperature: 0.8, topK: 20, seed: 5 }, maxTokens: 8 })).tokenIds);
  }
  setNumThreads(threads);
  assert.deepEqual(runs[0], runs[1]);
});

test('requests join and leave a running batch (continuous batching)', async () => {
  const batches: number[] = [];
  const model = tinyModel({ onDecode: (b) => batches.push(b) });
  const s = new Scheduler(model, tokenizer, { maxBatch: 8 });
  const long = s.submit({ inputs: prompt('long request'), sampling: { temperature: 0 }, maxTokens: 40 });
  let joined: Promise<unknown> | null = null;
  let seen = 0;
  for await (const e of long.events) {
    if (e.type === 'delta' && ++seen === 5) {
      joined = s.generate({ inputs: prompt('late'), sampling: { temperature: 0 }, maxTokens: 5 });
    }
  }
  const late = (await joined) as { tokenIds: number[] };
  assert.equal((await long.result).usage.completionTokens, 40);
  assert.equal(late.tokenIds.length, 5);
  // The late request ran inside the long one's batch, then left it.
  assert.ok(batches.includes(2), `batch sizes ${batches}`);
  assert.equal(batches[batches.length - 1], 1);
  const solo = await new Scheduler(tinyModel(), tokenizer).generate({ inputs: prompt('late'), sampling: { temperature: 0 }, maxTokens: 5 });
  assert.deepEqual(late.tokenIds, solo.tokenIds);
});

test('cancellation ends one request with "cancelled", frees its cache, and leaves the others running', async () => {
  const model = tinyModel();
  const s = new Scheduler(model, tokenizer);
  const ac = new AbortController();
  const victim = s.submit({ inputs: prompt('cancel me'), sampling: { temperature: 0 }, maxTokens: 200, signal: ac.signal });
  const other = s.submit({ inputs: prompt('keep me'), sampling: { temperature: 0 }, maxTokens: 30 });
  let n = 0;
  for await (const e of victim.events) if (e.type === 'delta' && ++n === 3) ac.abort();
  const r = await victim.result;
  assert.equal(r.finishReason, 'cancelled');
  assert.ok(r.usage.completionTokens < 10, `stopped promptly (${r.usage.completionTokens} tokens)`);
  assert.equal((await other.result).usage.completionTokens, 30);
  assert.equal(model.liveCaches.size, 0);
  // Cancelling a queued request (never started) and an already aborted signal.
  const queued = new Scheduler(model, tokenizer).submit({ inputs: prompt('x'), maxTokens: 5, signal: AbortSignal.abort() });
  assert.equal((await queued.result).finishReason, 'cancelled');
});

test('stop tokens, stop strings and max tokens', async () => {
  const start = ids('Q:').at(-1)!;
  const model = tinyModel({ script: chain(start, 'hi END-ok', EOS) });
  const s = new Scheduler(model, tokenizer);
  const byToken = await s.generate({ inputs: prompt('Q:'), sampling: { temperature: 0 }, maxTokens: 50, stopTokenIds: [EOS] });
  assert.equal(byToken.text, 'hi END-ok');
  assert.equal(byToken.finishReason, 'stop');
  const byString = s.submit({ inputs: prompt('Q:'), sampling: { temperature: 0 }, maxTokens: 50, stop: ['END'], stopTokenIds: [EOS] });
  const { text } = await collect(byString.events);
  assert.equal(text, 'hi ');
  assert.equal((await byString.result).content, 'hi');
  assert.equal((await byString.result).finishReason, 'stop');
  const byLength = await s.generate({ inputs: prompt('Q:'), sampling: { temperature: 0 }, maxTokens: 4, stopTokenIds: [EOS] });
  assert.deepEqual([byLength.text, byLength.finishReason], ['hi E', 'length']);
});

test('streamed text never splits a UTF-8 character', async () => {
  const start = ids('emoji:').at(-1)!;
  const model = tinyModel({ script: chain(start, '😀ok本', EOS) });
  const s = new Scheduler(model, tokenizer);
  const h = s.submit({ inputs: prompt('emoji:'), sampling: { temperature: 0 }, maxTokens: 50, stopTokenIds: [EOS] });
  const { deltas, text } = await collect(h.events); // the scripted bytes are all distinct, so the bigram chain is unambiguous
  assert.equal(text, '😀ok本');
  for (const d of deltas) if (d.type === 'delta') assert.ok(!d.text.includes('\uFFFD'), JSON.stringify(d.text));
  assert.ok(deltas.filter((d) => d.type === 'delta' && d.tokenIds.length > 0 && d.text === '').length >= 3, 'the emoji bytes were held back');
});

test('thinking: reasoning and content are separated; a budget closes the reasoning', async () => {
  const start = ids('T:').at(-1)!;
  const a = ids('a')[0]!;
  // <think> a a a a … forever; after </think> the answer "ok" and EOS.
  const script: [number, number][] = [[start, THINK], [THINK, a], [a, a], ...chain(END_THINK, '\nok', EOS)];
  const model = tinyModel({ script });
  const s = new Scheduler(model, tokenizer);
  const unlimited = await s.generate({ inputs: prompt('T:'), sampling: { temperature: 0 }, maxTokens: 20, stopTokenIds: [EOS] });
  assert.equal(unlimited.finishReason, 'length');
  assert.equal(unlimited.content, '');
  assert.equal(unlimited.reasoning_content, 'a'.repeat(19));
  const closeIds = tokenizer.encode('</think>\n\n');
  const h = s.submit({ inputs: prompt('T:'), sampling: { temperature: 0 }, maxTokens: 40, stopTokenIds: [EOS], thinking: { budget: 6, closeIds } });
  let reasoning = '';
  let content = '';
  for await (const e of h.events) if (e.type === 'delta') (reasoning += e.reasoning), (content += e.content);
  const r = await h.result;
  assert.equal(r.finishReason, 'stop');
  assert.equal(r.usage.reasoningTokens, 6);
  assert.equal(r.reasoning_content, 'aaaaa');
  assert.equal(r.content, 'ok');
  assert.deepEqual([reasoning, content], [r.reasoning_content, r.content], 'stream and result agree');
});

test('a failing request fails alone; bad parameters and a full queue are refused', async () => {
  const model = tinyModel();
  const s = new Scheduler(model, tokenizer, { maxQueue: 2 });
  const bad = s.submit({ inputs: { inputIds: Int32Array.of(1, 2), vision: [{} as never] }, maxTokens: 3 });
  const good = s.submit({ inputs: prompt('fine'), sampling: { temperature: 0 }, maxTokens: 3 });
  await assert.rejects(bad.result, /takes no images/);
  await assert.rejects(collect(bad.events), /takes no images/);
  assert.equal((await good.result).usage.completionTokens, 3);
  assert.throws(() => s.submit({ inputs: prompt('x'), sampling: { temperature: -1 } }), /temperature must be a number in \[0, 100\]/);
  assert.throws(() => s.submit({ inputs: prompt('x'), sampling: { topP: 0 } }), /topP/);
  assert.throws(() => s.submit({ inputs: prompt('x'), maxTokens: 0 }), /maxTokens/);
  assert.throws(() => s.submit({ inputs: { inputIds: new Int32Array(600) } }), /at most 511/);
  s.submit({ inputs: prompt('1'), maxTokens: 2 });
  s.submit({ inputs: prompt('2'), maxTokens: 2 });
  assert.throws(() => s.submit({ inputs: prompt('3'), maxTokens: 2 }), QueueFullError);
});
