/** End to end with the real tiny Seed1.5-VL model: batching, slots, images, checkpoints, quantisation. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tidy, nativeMemory } from '../../src/tensor/index.ts';
import { loadGenerationModel } from '../../src/generation/loader.ts';
import { Engine } from '../../src/generation/engine.ts';
import { SeedVLRuntime } from '../../src/generation/seed_vl_runtime.ts';
import { quantizeCheckpoint, readQuantManifest } from '../../src/generation/quant_checkpoint.ts';
import { compareModels } from '../../src/generation/quant_accuracy.ts';
import { Scheduler } from '../../src/generation/scheduler.ts';
import { presetTokenizerJson } from '../../src/generation/preset_tokenizer.ts';
import { saveModel } from '../../src/models/seed_vl/checkpoint.ts';
import { pngDataUrl } from '../server/_server.ts';

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

test('batched decode over cache slots equals one-by-one decode, in any slot order', async () => {
  const { model, tokenizer } = await loadGenerationModel({ preset: 'tiny', seed: 3, maxBatch: 4, maxContext: 256 });
  const rt = model as SeedVLRuntime;
  const prompts = ['a b c', 'the longer second prompt', 'x'].map((t) => Int32Array.from(tokenizer.encode(t)));
  const caches = prompts.map(() => rt.createCache(64));
  const first = prompts.map((p, i) => tidy(() => Float32Array.from(rt.prefill({ inputIds: p }, caches[i]!).data<Float32Array>())));
  // Feed the sequences in reverse slot order: rows must come back in the order asked.
  const order = [2, 0, 1];
  const next = Int32Array.from(order, (i) => (i * 37 + 11) % 1000);
  const batched = tidy(() => Float32Array.from(rt.decode(next, order.map((i) => caches[i]!)).data<Float32Array>()));
  const V = rt.vocabSize;
  // Reference: the same tokens one sequence at a time on fresh caches.
  order.forEach((seq, b) => {
    const c = rt.createCache(64);
    try {
      const p0 = tidy(() => Float32Array.from(rt.prefill({ inputIds: prompts[seq]! }, c).data<Float32Array>()));
      assert.ok(maxAbsDiff(p0, first[seq]!) === 0, 'prefill is deterministic');
      const solo = tidy(() => Float32Array.from(rt.decode(Int32Array.of(next[b]!), [c]).data<Float32Array>()));
      const d = maxAbsDiff(solo, batched.subarray(b * V, (b + 1) * V));
      assert.ok(d < 1e-4, `sequence ${seq}: batched vs alone max abs diff ${d}`);
    } finally {
      c.dispose();
    }
  });
  for (const c of caches) c.dispose();
  assert.equal(caches[0]!.length, 0, 'a released slot is empty');
  rt.dispose();
});

test('engine on the tiny model: images, concurrent requests, seeded sampling', async () => {
  const { model, tokenizer } = await loadGenerationModel({ preset: 'tiny', seed: 1, maxBatch: 3, maxContext: 512 });
  const engine = new Engine(model, tokenizer, { maxBatch: 3 });
  const image = await pngDataUrl(56, 84);
  const req = (text: string) => ({ messages: [{ role: 'user' as const, content: [{ type: 'image_url' as const, image_url: { url: image } }, { type: 'text' as const, text }] }] });
  const ask = async (text: string) => (await (await engine.chat(req(text), { sampling: { temperature: 1, seed: 4 }, maxTokens: 8 })).result);
  const alone = [];
  for (const t of ['one', 'two', 'three']) alone.push(await ask(t));
  const together = await Promise.all(['one', 'two', 'three'].map(ask));
  assert.deepEqual(together.map((r) => r.tokenIds), alone.map((r) => r.tokenIds));
  // 56×84 px → 2×3 LLM tokens between [SOI] and [EOI].
  const inputs = await engine.prepare(req('one'));
  assert.equal(inputs.vision.length, 1);
  assert.equal(inputs.vision[0]!.tokens, 6);
  assert.equal(alone[0]!.usage.promptTokens, inputs.inputIds.length);
  engine.dispose();
});

test('checkpoint directories: float and quantised round trips, accuracy cost of int8 and int4', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'seedvl-gen-'));
  try {
    const src = await loadGenerationModel({ preset: 'tiny', seed: 2, maxBatch: 1, maxContext: 256 });
    const seedModel = (src.model as SeedVLRuntime).model;
    saveModel(seedModel, join(dir, 'f32'));
    writeFileSync(join(dir, 'f32', 'tokenizer.json'), JSON.stringify(presetTokenizerJson(seedModel.config)));
    const reloaded = await loadGenerationModel({ model: join(dir, 'f32'), maxBatch: 1, maxContext: 256 });
    assert.deepEqual(reloaded.warnings, []);
    const same = compareModels(src.model, reloaded.model, src.tokenizer, { steps: 6, prompts: ['hello'] });
    assert.equal(same.maxAbsLogitDiff, 0, 'a saved and reloaded model is identical');
    const reports: Record<string, ReturnType<typeof compareModels>> = {};
    for (const bits of [8, 4] as const) {
      const out = join(dir, `int${bits}`);
      const r = quantizeCheckpoint(join(dir, 'f32'), out, { bits });
      assert.ok(r.quantized >= 4 * 7, `quantised the language Linear weights (${r.quantized})`);
      assert.ok(r.bytesOut < r.bytesIn, 'smaller on disk');
      assert.equal(readQuantManifest(out)!.bits, bits);
      const q = await loadGenerationModel({ model: out, maxBatch: 1, maxContext: 256 });
      assert.equal(q.weights, `int${bits} (group ${bits === 4 ? 32 : 128})`);
      reports[bits] = compareModels(src.model, q.model, src.tokenizer, { steps: 12 });
      q.model.dispose?.();
      // Quantising at load gives the same model as loading the quantised directory.
      const memBefore = nativeMemory().bytes;
      const onTheFly = await loadGenerationModel({ model: join(dir, 'f32'), quantize: { bits }, maxBatch: 1, maxContext: 256 });
      const q2 = await loadGenerationModel({ model: out, maxBatch: 1, maxContext: 256 });
      assert.equal(compareModels(onTheFly.model, q2.model, src.tokenizer, { steps: 4, prompts: ['x'] }).maxAbsLogitDiff, 0);
      onTheFly.model.dispose?.();
      q2.model.dispose?.();
      assert.equal(nativeMemory().bytes, memBefore, 'disposing a quantised model frees its weights (float and quantised)');
    }
    // int8 is close to float; int4 is coarser but still mostly agrees.
    assert.ok(reports[8]!.relRmsLogitDiff < 0.06, `int8 ${JSON.stringify(reports[8])}`);
    assert.ok(reports[8]!.top1Agreement >= 0.9, `int8 ${JSON.stringify(reports[8])}`);
    assert.ok(reports[4]!.relRmsLogitDiff < 0.35, `int4 ${JSON.stringify(reports[4])}`);
    assert.ok(reports[4]!.relRmsLogitDiff > reports[8]!.relRmsLogitDiff);
    if (process.env.SEEDVL_REPORT) console.log(JSON.stringify(reports));
    src.model.dispose?.();
    reloaded.model.dispose?.();
    // Refusals: a quantised directory cannot be quantised again; a directory without config.json cannot load.
    assert.throws(() => quantizeCheckpoint(join(dir, 'int8'), join(dir, 'again'), { bits: 4 }), /already quantised/);
    await assert.rejects(loadGenerationModel({ model: tmpdir() + '/does-not-exist-seedvl' }), /does-not-exist/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('one extend call per step; a faulty request in a combined step fails alone', async () => {
  const { model, tokenizer, config } = await loadGenerationModel({ preset: 'tiny', seed: 6, maxBatch: 4, maxContext: 256 });
  let calls = 0;
  const extend = model.extend!.bind(model);
  model.extend = (items) => (calls++, extend(items));
  const s = new Scheduler(model, tokenizer, { maxBatch: 4 });
  const req = (t: string) => ({ inputs: { inputIds: Int32Array.from(tokenizer.encode(t)) }, sampling: { temperature: 1, seed: 8 }, maxTokens: 6 });
  const alone = [];
  for (const t of ['first', 'second one']) alone.push((await s.generate(req(t))).tokenIds);
  calls = 0;
  const pair = await Promise.all(['first', 'second one'].map((t) => s.generate(req(t))));
  assert.deepEqual(pair.map((r) => r.tokenIds), alone);
  assert.equal(calls, 6, 'one call for both prompts, then one per decode step (5)');
  calls = 0;
  // An image placeholder without its image: the model rejects this prompt.
  const bad = s.submit({ inputs: { inputIds: Int32Array.of(config.soiTokenId, config.imageTokenId, config.eoiTokenId) }, maxTokens: 3 });
  const good = [s.submit(req('first')), s.submit(req('second one'))];
  await assert.rejects(bad.result, /image|placeholder|SOI|token/i);
  assert.deepEqual(await Promise.all(good.map(async (h) => (await h.result).tokenIds)), alone);
  assert.equal(calls, 1 + 3 + 5, 'the failed combined call, three prompts alone, five decode steps');
  model.dispose?.();
});
