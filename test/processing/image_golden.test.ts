// Golden checks against transformers 5.18 (smart_resize, Qwen2VLImageProcessorPil).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { resolve } from 'node:path';
import { smartResize } from '../../src/processing/smart_resize.ts';
import { MediaError } from '../../src/processing/errors.ts';
import { resizeRgb } from '../../src/processing/resample.ts';
import { patchifyFrames } from '../../src/processing/patchify.ts';
import { preprocessRgb } from '../../src/processing/preprocess.ts';
import { QWEN2_VL_VISION, QWEN3_VL_VISION, visionConfigFromHf } from '../../src/processing/vision_config.ts';
import { GOLDEN_DIR, goldenAvailable, maxAbsDiff, readJson, readSafetensors } from './_golden.ts';

const skip = goldenAvailable ? false : `golden data not found at ${GOLDEN_DIR}`;

interface ResizeCase {
  height: number; width: number; factor: number; min_pixels: number; max_pixels: number;
  resized_height?: number; resized_width?: number; grid_thw?: number[]; num_image_tokens?: number; error?: string;
}

test('smart_resize matches every golden case (sizes, grids, tokens, errors)', { skip }, () => {
  const { cases } = readJson<{ cases: ResizeCase[] }>('image_processor/smart_resize_cases.json');
  assert.ok(cases.length > 200);
  let checked = 0;
  for (const c of cases) {
    const opts = { factor: c.factor, minPixels: c.min_pixels, maxPixels: c.max_pixels };
    const where = `${c.height}x${c.width} f=${c.factor} min=${c.min_pixels} max=${c.max_pixels}`;
    if (c.error) {
      assert.throws(() => smartResize(c.height, c.width, opts), (e: unknown) => e instanceof MediaError && e.code === 'aspect_ratio' && e.message.includes(c.error!.slice(0, 45)), where);
    } else {
      const r = smartResize(c.height, c.width, opts);
      assert.deepEqual([r.height, r.width], [c.resized_height, c.resized_width], where);
      const patch = c.factor / 2;
      assert.deepEqual([1, r.height / patch, r.width / patch], c.grid_thw, where);
      assert.equal((r.height * r.width) / (c.factor * c.factor), c.num_image_tokens, where);
    }
    checked++;
  }
  assert.equal(checked, cases.length);
});

test('smart_resize ties round half to even (spec §3.2 examples)', () => {
  const big = { factor: 28, minPixels: 1, maxPixels: 1e9 };
  assert.equal(smartResize(42, 28 * 10, big).height, 56);
  assert.equal(smartResize(70, 28 * 10, big).height, 56);
  assert.equal(smartResize(98, 28 * 10, big).height, 112);
  assert.equal(smartResize(126, 28 * 10, big).height, 112);
  // Floor branch clamp (project default; the cookbook would return height 0 here).
  assert.deepEqual(smartResize(28, 5600, { factor: 28, minPixels: 3136, maxPixels: 12544 }), { height: 28, width: 1568 });
});

interface PreprocessCase {
  height: number; width: number; image_grid_thw: number[]; resized_hw: [number, number];
  extra_kwargs: { min_pixels?: number; max_pixels?: number };
  processor: Record<string, unknown>;
}

function loadPreprocess() {
  const meta = readJson<{ cases: Record<string, PreprocessCase> }>('image_processor/preprocess_cases.json');
  const tensors = readSafetensors(resolve(GOLDEN_DIR, 'image_processor/preprocess_cases.safetensors'));
  return { meta, tensors };
}

test('PIL-compatible bicubic resize is bit-identical to the golden resized_u8', { skip }, () => {
  const { meta, tensors } = loadPreprocess();
  for (const name of Object.keys(meta.cases)) {
    const img = tensors.get(`${name}.image_u8`)!;
    const ref = tensors.get(`${name}.resized_u8`)!;
    const out = resizeRgb({ height: img.shape[0]!, width: img.shape[1]!, data: img.data as Uint8Array }, ref.shape[1]!, ref.shape[0]!, 'bicubic');
    const d = maxAbsDiff(out.data, ref.data);
    assert.equal(d, 0, `${name}: resize max abs diff ${d}`);
  }
});

test('patchify of the golden resized_u8 matches pixel_values within 1e-6', { skip }, () => {
  const { meta, tensors } = loadPreprocess();
  for (const [name, c] of Object.entries(meta.cases)) {
    const cfg = visionConfigFromHf(c.processor);
    const ref = tensors.get(`${name}.resized_u8`)!;
    const pv = tensors.get(`${name}.pixel_values`)!;
    const out = patchifyFrames([{ height: ref.shape[0]!, width: ref.shape[1]!, data: ref.data as Uint8Array }], cfg);
    assert.deepEqual(out.shape, pv.shape, name);
    assert.deepEqual([out.grid.t, out.grid.h, out.grid.w], c.image_grid_thw, name);
    const d = maxAbsDiff(out.pixelValues, pv.data);
    assert.ok(d <= 1e-6, `${name}: pixel_values max abs diff ${d}`);
  }
});

test('full pipeline from image_u8 reproduces resized size, grid and pixel_values', { skip }, () => {
  const { meta, tensors } = loadPreprocess();
  for (const [name, c] of Object.entries(meta.cases)) {
    const preset = (c.processor['patch_size'] as number) === 16 ? QWEN3_VL_VISION : QWEN2_VL_VISION;
    const img = tensors.get(`${name}.image_u8`)!;
    const pv = tensors.get(`${name}.pixel_values`)!;
    const out = preprocessRgb({ height: img.shape[0]!, width: img.shape[1]!, data: img.data as Uint8Array }, preset, {
      ...(c.extra_kwargs.min_pixels ? { minPixels: c.extra_kwargs.min_pixels } : {}),
      ...(c.extra_kwargs.max_pixels ? { maxPixels: c.extra_kwargs.max_pixels } : {}),
    });
    assert.deepEqual([out.resized.height, out.resized.width], c.resized_hw, name);
    assert.deepEqual([out.grid.t, out.grid.h, out.grid.w], c.image_grid_thw, name);
    const d = maxAbsDiff(out.pixelValues, pv.data);
    assert.ok(d <= 1e-6, `${name}: pixel_values max abs diff ${d}`);
  }
});

test('Seed layout: temporal patch 1 gives 588-wide rows in merge-window order', () => {
  // 56x56 image whose red channel encodes the pixel's patch index (row-major over 4x4 patches).
  const W = 56, H = 56, P = 14;
  const data = new Uint8Array(W * H * 3);
  for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) data[(y * W + x) * 3] = Math.floor(y / P) * 4 + Math.floor(x / P);
  const cfg = { ...QWEN2_VL_VISION, temporalPatchSize: 1, rescaleFactor: 1, mean: [0, 0, 0] as [number, number, number], std: [1, 1, 1] as [number, number, number] };
  const out = patchifyFrames([{ width: W, height: H, data }], cfg);
  assert.deepEqual(out.shape, [16, 588]);
  assert.equal(out.tokens, 4);
  const firstOfRow = Array.from({ length: 16 }, (_, r) => out.pixelValues[r * 588]);
  // Block (0,0): patches 0,1,4,5; block (0,1): 2,3,6,7; block (1,0): 8,9,12,13; block (1,1): 10,11,14,15.
  assert.deepEqual(firstOfRow, [0, 1, 4, 5, 2, 3, 6, 7, 8, 9, 12, 13, 10, 11, 14, 15]);
});
