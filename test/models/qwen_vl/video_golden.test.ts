/**
 * The golden model cases with a video, rebuilt from the raw frames through the chat
 * pipeline (buildModelInputs with the family's template and the real Qwen tokenizer):
 * the prompt ids, the patches, and the M-RoPE positions the model computes from the
 * video metadata (grid, second_per_grid) must all be the golden ones.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { buildModelInputs } from '../../../src/processing/chat_inputs.ts';
import { Tokenizer } from '../../../src/processing/tokenizer.ts';
import { QWEN2_5_VL_VISION, QWEN3_VL_VISION } from '../../../src/processing/vision_config.ts';
import { QWEN2_VL_CHAT, QWEN3_VL_CHAT } from '../../../src/models/qwen_vl/template.ts';
import { loadQwenModel } from '../../../src/models/qwen_vl/load.ts';
import { videoBatch } from '../../../src/models/qwen_vl/runtime.ts';
import { readSafetensors } from '../../processing/_golden.ts';
import { GOLDEN, goldenAvailable, modelDir, QWEN_TOKENIZER } from './_helpers.ts';
import type { RgbImage } from '../../../src/processing/resample.ts';

const skip = goldenAvailable && existsSync(QWEN_TOKENIZER) && existsSync(join(GOLDEN, 'video_processor')) ? false : 'shared/golden or the Qwen tokenizer is not present';

/** The goldens write timestamp text as one byte-level id per byte (README); everything else is the real tokenizer. */
function goldenTokenizer(tok: Tokenizer): Tokenizer {
  const t = Object.create(tok) as Tokenizer;
  t.encode = (s: string) => (/^<[\d.]+ seconds>$/.test(s) ? [...Buffer.from(s)].map((b) => (b === 32 ? 220 : b - 33)) : tok.encode(s));
  return t;
}

function goldenFrames(family: string): RgbImage[] {
  const x = readSafetensors(join(GOLDEN, 'video_processor', family, 'vid_8f_56x84_fps4.safetensors')).get('frames_u8')!;
  const [n, h, w] = x.shape as [number, number, number];
  return Array.from({ length: n }, (_, i) => ({ width: w, height: h, data: (x.data as Uint8Array).subarray(i * h * w * 3, (i + 1) * h * w * 3) }));
}

for (const family of ['qwen2_5_vl', 'qwen3_vl_moe'] as const) {
  test(`${family} golden video case: ids, patches and M-RoPE positions from the raw frames`, { skip }, async () => {
    const j = JSON.parse(readFileSync(join(GOLDEN, `${family}_tiny/cases/video.json`), 'utf8'));
    const st = readSafetensors(join(GOLDEN, `${family}_tiny/cases/video.safetensors`));
    const tok = await Tokenizer.fromFile(QWEN_TOKENIZER);
    const want = j.input_ids[0] as number[];
    // The question text, read back from the golden ids (between the video block and <|im_end|>).
    const after = want.lastIndexOf(151653) + 1;
    const question = tok.decode(want.slice(after, want.indexOf(151645, after)));
    const qwen3 = family === 'qwen3_vl_moe';
    const frames = goldenFrames(family);
    const meta = j.videos.vid_8f_56x84_fps4;
    // The processor's frames: all 8 (Qwen2.5, do_sample_frames=False) or the sampled 0, 2, 5, 7 (Qwen3), at t = index / 4.
    const part = { type: 'video_frames' as const, frames: (meta.frames_indices as number[]).map((i) => ({ image: frames[i]!, t: i / 4 })) };
    const inputs = await buildModelInputs({ messages: [
      { role: 'system', content: 'You are a helpful assistant.' },
      { role: 'user', content: [part, { type: 'text', text: question }] },
    ] }, goldenTokenizer(tok), {
      template: qwen3 ? QWEN3_VL_CHAT : QWEN2_VL_CHAT, vision: qwen3 ? QWEN3_VL_VISION : QWEN2_5_VL_VISION,
      // The golden Qwen2.5 processor config keeps the frames at 56×84 (shortest_edge 3136); Qwen3 uses the defaults.
      ...(qwen3 ? {} : { video: { minPixels: 3136, maxPixels: 12845056 } }),
    });
    assert.deepEqual(Array.from(inputs.inputIds), want);
    const v = inputs.vision[0]!;
    assert.deepEqual([[v.grid.t, v.grid.h, v.grid.w]], j.video_grid_thw);
    if (!qwen3) assert.deepEqual([v.secondPerGrid], JSON.parse(JSON.stringify(j.second_per_grid_ts)));
    const gold = st.get('pixel_values_videos')!.data as Float32Array;
    let d = 0;
    for (let i = 0; i < gold.length; i++) d = Math.max(d, Math.abs(v.pixelValues[i]! - gold[i]!));
    // Qwen3's frames are upscaled: Pillow vs torchvision rounding, at most one level (docs/processing.md).
    assert.ok(d <= (qwen3 ? 1 / 127.5 + 1e-6 : 1e-6), `pixel values differ by ${d}`);
    const { model } = loadQwenModel(modelDir(family));
    try {
      const videos = videoBatch(inputs.vision)!;
      const ids = inputs.inputIds;
      const { positions } = model.positions(ids, [ids.length], { videos }, undefined, 'transformers');
      assert.deepEqual(Array.from(positions), (j.position_ids as number[][][]).flat(2));
      // Qwen2.5 stores the original-Qwen convention too (they differ for this video); Qwen3's agree.
      const refWant = (j.position_ids_reference_convention ?? j.position_ids) as number[][][];
      const ref = model.positions(ids, [ids.length], { videos }, undefined, 'original');
      assert.deepEqual(Array.from(ref.positions), refWant.flat(2));
      videos.pixelValues.dispose();
    } finally {
      model.dispose();
    }
  });
}
