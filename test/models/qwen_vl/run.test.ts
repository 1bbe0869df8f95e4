/**
 * Running Qwen models through the generation runtime (what `seedvl run --model DIR`
 * does): a golden model directory with Qwen's real tokenizer added, the chat
 * templates, batched decoding, and the parsing of boxes/points per family.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadModelDir } from '../../../src/models/registry.ts';
import { Engine } from '../../../src/generation/engine.ts';
import { QWEN2_VL_CHAT, QWEN3_VL_CHAT, formatFixed1, qwen3Timestamp } from '../../../src/models/qwen_vl/template.ts';
import { parseQwenObjects } from '../../../src/models/qwen_vl/parse.ts';
import { loadQwenModel } from '../../../src/models/qwen_vl/load.ts';
import { argmax, tidy } from '../../../src/tensor/index.ts';
import type { RgbImage } from '../../../src/processing/resample.ts';
import type { VisionInput } from '../../../src/processing/chat_inputs.ts';
import { imageBatch } from '../../../src/models/qwen_vl/runtime.ts';
import { existsSync } from 'node:fs';
import { copyModel, goldenAvailable, modelDir, FAMILIES, QWEN_TOKENIZER } from './_helpers.ts';

const skip = goldenAvailable && existsSync(QWEN_TOKENIZER) ? false : 'shared/golden or the Qwen tokenizer is not present';

function image(w: number, h: number, seed: number): RgbImage {
  const data = new Uint8Array(w * h * 3);
  for (let i = 0; i < data.length; i++) data[i] = (i * 31 + seed * 17) % 251;
  return { width: w, height: h, data };
}

/** Greedy ids from the model directly (prefill + decode on a one-row cache). */
function directGreedy(dir: string, ids: Int32Array, vision: VisionInput[], steps: number): number[] {
  const { model } = loadQwenModel(dir);
  const cache = model.createCache(1, ids.length + steps);
  const out: number[] = [];
  const images = imageBatch(vision);
  let logits = model.prefill(cache, { inputIds: ids, ...(images ? { images } : {}) });
  for (let s = 0; s < steps; s++) {
    const tok = tidy(() => (argmax(logits, -1).toArray() as number[])[0]);
    logits.dispose();
    out.push(tok);
    if (s < steps - 1) logits = model.decode(cache, [tok]);
  }
  cache.dispose();
  images?.pixelValues.dispose();
  model.dispose();
  return out;
}

test('seedvl run path: each family answers with its template; greedy equals the model driven directly', { skip }, async () => {
  for (const family of FAMILIES) {
    const dir = copyModel(family, { tokenizer: true });
    const l = await loadModelDir(dir, { maxBatch: 2, maxContext: 400 });
    assert.equal(l.kind.kind, 'qwen_vl');
    assert.equal(l.template.name, family === 'qwen3_vl_moe' ? 'qwen3_vl' : 'qwen2_vl');
    const engine = new Engine(l.model, l.tokenizer, { template: l.template, vision: l.vision, maxBatch: 2 });
    try {
      const req = { messages: [{ role: 'user' as const, content: [{ type: 'image' as const, image: image(84, 56, 1) }, { type: 'text' as const, text: 'Where is the cat?' }] }] };
      const h = await engine.chat(req, { sampling: { temperature: 0 }, maxTokens: 6 });
      const r = await h.result;
      const ids = h.inputs.inputIds;
      // The prompt: ChatML, Qwen2/2.5 with the default system turn, one image block of t·h·w/4 pads.
      const text = l.tokenizer.decode(Array.from(ids));
      assert.equal(text.startsWith('<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n'), family !== 'qwen3_vl_moe', text.slice(0, 80));
      assert.ok(text.endsWith('Where is the cat?<|im_end|>\n<|im_start|>assistant\n'), text.slice(-60));
      const v = h.inputs.vision[0];
      assert.equal(ids.filter((x) => x === 151655).length, (v.grid.t * v.grid.h * v.grid.w) / 4);
      assert.equal(v.shape[1], family === 'qwen3_vl_moe' ? 1536 : 1176);
      assert.equal(r.usage.completionTokens, 6);
      assert.deepEqual(r.tokenIds, directGreedy(modelDir(family), ids, h.inputs.vision, 6), family);
    } finally {
      engine.dispose();
    }
  }
});

test('two requests decoded together give the same answers as one at a time', { skip }, async () => {
  const dir = copyModel('qwen3_vl_moe', { tokenizer: true });
  const l = await loadModelDir(dir, { maxBatch: 2, maxContext: 300 });
  const engine = new Engine(l.model, l.tokenizer, { template: l.template, vision: l.vision, maxBatch: 2 });
  try {
    const a = { messages: [{ role: 'user' as const, content: [{ type: 'image' as const, image: image(64, 64, 2) }, { type: 'text' as const, text: 'one' }] }] };
    const b = { messages: [{ role: 'user' as const, content: 'two words' }] };
    const opt = { sampling: { temperature: 0 }, maxTokens: 5 };
    const alone = [await (await engine.chat(a, opt)).result, await (await engine.chat(b, opt)).result].map((r) => r.tokenIds);
    const [ha, hb] = [await engine.chat(a, opt), await engine.chat(b, opt)];
    const together = [(await ha.result).tokenIds, (await hb.result).tokenIds];
    assert.deepEqual(together, alone);
  } finally {
    engine.dispose();
  }
});

test('templates: Qwen2/2.5 insert the default system turn, Qwen3 does not; a given system message wins', () => {
  const msgs = [{ role: 'user' as const, content: 'hi' }];
  const text = (segs: ReturnType<typeof QWEN2_VL_CHAT.render>) => segs.map((s) => (s.type === 'text' ? s.text : '<media>')).join('');
  assert.equal(text(QWEN2_VL_CHAT.render(msgs, { thinking: 'enabled' })), '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n');
  assert.equal(text(QWEN3_VL_CHAT.render(msgs, { thinking: 'enabled' })), '<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n');
  assert.equal(text(QWEN3_VL_CHAT.render([{ role: 'system', content: 'Be brief.' }, ...msgs], { thinking: 'disabled' })),
    '<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n');
  const ids = { imageStart: 1, imageEnd: 2, imagePad: 9 } as Parameters<typeof QWEN2_VL_CHAT.expandImage>[1];
  assert.deepEqual(QWEN2_VL_CHAT.expandImage(3, ids, () => []), [1, 9, 9, 9, 2]);
});

test('Qwen3 timestamps format like Python (round half to even on the exact binary value)', () => {
  assert.equal(qwen3Timestamp(0.25), '<0.2 seconds>');
  assert.equal(qwen3Timestamp(1.5), '<1.5 seconds>');
  for (const [x, s] of [[0.35, '0.3'], [0.45, '0.5'], [2.25, '2.2'], [2.75, '2.8'], [0.05, '0.1'], [0, '0.0'], [12.349999, '12.3'], [3.96, '4.0']] as const) {
    assert.equal(formatFixed1(x), s, String(x));
  }
});

test('boxes and points come back in original-image pixels, per family convention', () => {
  const image = { original: { width: 2000, height: 1000 }, resized: { width: 1008, height: 504 } };
  const q2 = parseQwenObjects('<|object_ref_start|>the cat<|object_ref_end|><|box_start|>(100,200),(300,400)<|box_end|> and dog(500,500),(600,700)', 'qwen2_vl', image);
  assert.deepEqual(q2.boxes.items.map((b) => [b.label, b.raw, b.pixel]), [
    ['the cat', [100, 200, 300, 400], { x1: 200, y1: 200, x2: 600, y2: 400 }],
    ['and dog', [500, 500, 600, 700], { x1: 1000, y1: 500, x2: 1200, y2: 700 }],
  ]);
  const json = '```json\n[{"bbox_2d": [504, 126, 1008, 252], "label": "cat"}, {"point_2d": [252, 504], "label": "dot"}, {"bbox_2d": [1, 2]}]\n```';
  const q25 = parseQwenObjects(json, 'qwen2_5_vl', image); // absolute pixels of the resized image
  assert.deepEqual(q25.boxes.items[0].pixel, { x1: 1000, y1: 250, x2: 2000, y2: 500 });
  assert.deepEqual(q25.points.items[0].pixel, { x: 500, y: 1000 });
  assert.equal(q25.boxes.issues.length, 1);
  const q3 = parseQwenObjects(json.replace('1008', '1000'), 'qwen3_vl_moe', image); // relative 0–1000
  assert.deepEqual(q3.boxes.items[0].pixel, { x1: 1008, y1: 126, x2: 2000, y2: 252 });
  assert.deepEqual(q3.points.items[0].pixel, { x: 504, y: 504 });
  assert.equal(parseQwenObjects('no objects {here}', 'qwen3_vl', image).boxes.items.length, 0);
  assert.equal(parseQwenObjects('[{"bbox_2d": [1, 2, 3, 4000]}]', 'qwen3_vl', image).boxes.issues[0].reason, 'values must lie in [0, 1000]');
});
