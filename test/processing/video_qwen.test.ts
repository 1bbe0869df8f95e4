// Qwen video preprocessing and token layout against the golden video_processor cases.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { GOLDEN_DIR, readSafetensors } from './_golden.ts';
import { planQwenVideo, patchifyQwenVideo, qwen3VideoSmartResize, qwenVideoSize, resizeFrames, torchLinspace } from '../../src/processing/video_qwen.ts';
import { QWEN2_5_VL_VISION, QWEN3_VL_VISION, visionConfigFromHf } from '../../src/processing/vision_config.ts';
import { smartResize } from '../../src/processing/smart_resize.ts';
import { QWEN2_VL_VIDEO, QWEN3_VL_VIDEO } from '../../src/models/qwen_vl/template.ts';
import type { RgbImage } from '../../src/processing/resample.ts';

const VP = join(GOLDEN_DIR, 'video_processor');
const skip = existsSync(join(VP, 'qwen3_vl_moe/vid_8f_56x84_fps4.json')) ? false : 'shared/golden/video_processor is not present';
const IDS = { imageStart: 151652, imageEnd: 151653, imagePad: 151655, videoPad: 151656, turnStart: 151644, turnEnd: 151645, eos: 151643, pad: 151643, thinkStart: 0, thinkEnd: 0 };
/** The goldens' stand-in timestamp ids: one byte-level Qwen id per UTF-8 byte ('!'..'~' → byte − 33, ' ' → 220). */
const byteIds = (s: string): number[] => [...Buffer.from(s, 'utf8')].map((b) => (b === 32 ? 220 : b - 33));

function load(family: string) {
  const meta = JSON.parse(readFileSync(join(VP, family, 'vid_8f_56x84_fps4.json'), 'utf8'));
  const t = readSafetensors(join(VP, family, 'vid_8f_56x84_fps4.safetensors'));
  const frames = (name: string): RgbImage[] => {
    const x = t.get(name)!;
    const [n, h, w] = x.shape as [number, number, number];
    return Array.from({ length: n }, (_, i) => ({ width: w, height: h, data: (x.data as Uint8Array).subarray(i * h * w * 3, (i + 1) * h * w * 3) }));
  };
  const cfgJson = JSON.parse(readFileSync(join(VP, family, 'video_preprocessor_config.json'), 'utf8'));
  return { meta, frames, pixels: t.get('pixel_values_videos')!.data as Float32Array, cfgJson };
}

function maxAbs(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

test('Qwen3 video smart_resize matches every golden case', { skip }, () => {
  const cases = JSON.parse(readFileSync(join(VP, 'qwen3_video_smart_resize_cases.json'), 'utf8')).cases as Record<string, number>[];
  assert.ok(cases.length > 0);
  for (const c of cases) {
    const r = qwen3VideoSmartResize(c.num_frames!, c.height!, c.width!, { temporalFactor: c.temporal_factor, factor: c.factor!, minPixels: c.min_pixels!, maxPixels: c.max_pixels! });
    assert.deepEqual([r.height, r.width], [c.resized_height, c.resized_width], JSON.stringify(c));
  }
});

test('Qwen2.5-VL golden video: grid, second_per_grid_ts, expanded ids and pixel values', { skip }, () => {
  const { meta, frames, pixels, cfgJson } = load('qwen2_5_vl');
  const cfg = visionConfigFromHf(cfgJson, QWEN2_5_VL_VISION);
  const src = frames('frames_u8');
  // do_sample_frames=False: every frame, at the processor's per-frame limits.
  const size = smartResize(56, 84, { factor: cfg.factor, minPixels: cfgJson.size.shortest_edge, maxPixels: cfgJson.size.longest_edge });
  assert.deepEqual([size.height, size.width], meta.resized_hw);
  const v = patchifyQwenVideo(resizeFrames(src, size, cfg), src.map((_, i) => i / 4), meta.sampled_fps, cfg);
  assert.deepEqual([[v.grid.t, v.grid.h, v.grid.w]], meta.video_grid_thw);
  assert.equal(v.tokens, meta.num_video_tokens);
  assert.deepEqual([v.secondPerGrid], meta.second_per_grid_ts);
  assert.deepEqual(v.shape, meta.tensors.pixel_values_videos.shape);
  // No resize happens here (56×84 is already a multiple of 28), so values match to float rounding.
  assert.ok(maxAbs(v.pixelValues, pixels) < 1e-6);
  const ids = QWEN2_VL_VIDEO.expand({ groups: v.grid.t, tokensPerGroup: v.tokensPerGroup, groupTimes: v.groupTimes }, IDS, byteIds);
  assert.deepEqual(ids, meta.expanded_ids);
});

test('Qwen3-VL golden video: sampled frames, size, timestamps, expanded ids; pixel values within the resize difference', { skip }, () => {
  const { meta, frames, pixels, cfgJson } = load('qwen3_vl_moe');
  const cfg = visionConfigFromHf(cfgJson, QWEN3_VL_VISION);
  const src = frames('frames_u8');
  const plan = planQwenVideo('qwen3_vl', 8, 4, 84, 56, cfg, { fps: cfgJson.fps, minPixels: cfgJson.size.shortest_edge, maxPixels: cfgJson.size.longest_edge });
  assert.deepEqual(plan.indices, meta.frames_indices);
  assert.equal(plan.sampledFps, meta.sampled_fps);
  assert.deepEqual([plan.resized.height, plan.resized.width], meta.resized_hw);
  const picked = plan.indices.map((i) => src[i]!);
  const v = patchifyQwenVideo(resizeFrames(picked, plan.resized, cfg), plan.times, plan.sampledFps, cfg);
  assert.deepEqual([[v.grid.t, v.grid.h, v.grid.w]], meta.video_grid_thw);
  assert.equal(v.tokens, meta.num_video_tokens);
  assert.deepEqual(v.groupTimes, meta.timestamps_seconds);
  const ids = QWEN3_VL_VIDEO.expand({ groups: v.grid.t, tokensPerGroup: v.tokensPerGroup, groupTimes: v.groupTimes }, IDS, byteIds);
  assert.deepEqual(ids, meta.expanded_ids);
  // Patch order and normalisation are exact on the golden's own resized frames...
  const exact = patchifyQwenVideo(frames('resized_u8'), plan.times, plan.sampledFps, cfg);
  assert.ok(maxAbs(exact.pixelValues, pixels) < 1e-6);
  // ...while our resize is Pillow's bicubic and the golden's torchvision's antialiased bicubic (the same
  // a = −0.5 kernel, different fixed-point rounding): resized bytes differ by at most 1 level, so
  // normalised values (std 0.5) by at most 1/127.5, and only on a few pixels.
  const ours = resizeFrames(picked, plan.resized, cfg);
  const gold = frames('resized_u8');
  let byteMax = 0;
  ours.forEach((f, k) => f.data.forEach((x, j) => (byteMax = Math.max(byteMax, Math.abs(x - gold[k]!.data[j]!)))));
  assert.ok(byteMax <= 1, `resized bytes differ by ${byteMax}`);
  const d = maxAbs(v.pixelValues, pixels);
  let sum = 0;
  for (let i = 0; i < pixels.length; i++) sum += Math.abs(v.pixelValues[i]! - pixels[i]!);
  const mean = sum / pixels.length;
  assert.ok(d <= 1 / 127.5 + 1e-6 && mean < 1e-4, `max ${d} mean ${mean}`);
});

test('qwen-vl-utils sampling for Qwen2/2.5: even frame count, torch.linspace rounding, per-frame budget', () => {
  assert.deepEqual(torchLinspace(0, 7, 4).map((x) => Math.round(x)), [0, 2, 5, 7]);
  // torch fills the upper half from the end: the last point is exactly `end`.
  assert.equal(torchLinspace(0, 10, 7)[6], 10);
  const p = planQwenVideo('qwen2_vl', 8, 4, 112, 84, QWEN2_5_VL_VISION);
  assert.deepEqual(p.indices, [0, 2, 5, 7]);
  assert.equal(p.sampledFps, 2);
  assert.deepEqual(p.resized, { height: 280, width: 392 }); // min 128 tokens per frame → upscaled
  const long = planQwenVideo('qwen2_vl', 3001, 30, 640, 360, QWEN2_5_VL_VISION);
  assert.equal(long.indices.length, 200);
  assert.equal(long.indices.length % 2, 0);
  const tokens = (long.resized.height / 28) * (long.resized.width / 28);
  assert.ok(tokens <= 768 && tokens >= 128, String(tokens));
  assert.deepEqual(qwenVideoSize('qwen2_vl', 200, 640, 360, QWEN2_5_VL_VISION), long.resized);
  // Qwen3 on the same clip: fps 2 with at least 4 frames; a 3-frame clip takes all 3 (the last repeats in the patch).
  assert.equal(planQwenVideo('qwen3_vl', 3001, 30, 640, 360, QWEN3_VL_VISION).indices.length, 200);
  const three = planQwenVideo('qwen3_vl', 3, 30, 64, 64, QWEN3_VL_VISION);
  assert.deepEqual(three.indices, [0, 1, 2]);
  const img = { width: 64, height: 64, data: new Uint8Array(64 * 64 * 3) };
  const v = patchifyQwenVideo(resizeFrames([img, img, img], three.resized, QWEN3_VL_VISION), three.times, three.sampledFps, QWEN3_VL_VISION);
  assert.equal(v.grid.t, 2);
  assert.deepEqual(v.groupTimes, [1 / 60, 2 / 30]);
});
