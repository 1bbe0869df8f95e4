/** M-RoPE positions: text, images, videos (absolute time, Qwen3 per-frame blocks), conventions, bad inputs. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MediaCursor, rowPositions, type RopeIndexSpec } from '../../../src/models/qwen_vl/rope_index.ts';
import { windowLayout, bilinearTaps } from '../../../src/models/qwen_vl/vision_layout.ts';

const IMG = 9, VID = 8;
const spec = (family: RopeIndexSpec['family'], convention: RopeIndexSpec['convention'] = 'transformers'): RopeIndexSpec => ({
  family, mergeSize: 2, tokensPerSecond: 2, imageTokenId: IMG, videoTokenId: VID, convention,
});
const axes = (p: Int32Array) => [0, 1, 2].map((a) => Array.from(p.subarray((a * p.length) / 3, ((a + 1) * p.length) / 3)));

test('text then an image then text: (st+h, st+w) raster, text resumes at st + max(H, W)', () => {
  const ids = [1, 2, IMG, IMG, IMG, IMG, IMG, IMG, 3];
  const r = rowPositions(ids, new MediaCursor({ images: [{ t: 1, h: 4, w: 6 }], videos: [] }, spec('qwen2_vl')));
  assert.deepEqual(axes(r.positions), [[0, 1, 2, 2, 2, 2, 2, 2, 5], [0, 1, 2, 2, 2, 3, 3, 3, 5], [0, 1, 2, 3, 4, 2, 3, 4, 5]]);
  assert.equal(r.next, 6);
});

test('Qwen2.5 video: temporal ids in absolute time; the two conventions differ only after a long video', () => {
  const ids = [1, ...new Array(4 * 1 * 2).fill(VID), 2];
  const media = { images: [], videos: [{ t: 4, h: 2, w: 4 }], secondPerGrid: [1.0] }; // interval = 2 tokens/s · 1 s
  const a = rowPositions(ids, new MediaCursor(media, spec('qwen2_5_vl')));
  assert.deepEqual(axes(a.positions)[0], [0, 1, 1, 3, 3, 5, 5, 7, 7, 3]);
  assert.equal(a.next, 8); // generation continues after every position
  const b = rowPositions(ids, new MediaCursor(media, spec('qwen2_5_vl', 'original')));
  assert.equal(axes(b.positions)[0][9], 8);
  // float32 product, then truncation: 2 · 0.6666667 = 1.3333334 → 0, 1, 2, 4
  const c = rowPositions([...new Array(4).fill(VID)], new MediaCursor({ images: [], videos: [{ t: 4, h: 2, w: 2 }], secondPerGrid: [2 / 3] }, spec('qwen2_5_vl')));
  assert.deepEqual(axes(c.positions)[0], [0, 1, 2, 4]);
});

test('Qwen3 video: one block per temporal patch, temporal id 0, with timestamp text between', () => {
  const ids = [5, VID, VID, 6, 7, VID, VID, 4];
  const r = rowPositions(ids, new MediaCursor({ images: [], videos: [{ t: 2, h: 2, w: 4 }] }, spec('qwen3_vl_moe')));
  assert.deepEqual(axes(r.positions), [[0, 1, 1, 3, 4, 5, 5, 7], [0, 1, 1, 3, 4, 5, 5, 7], [0, 1, 2, 3, 4, 5, 6, 7]]);
});

test('placeholders that do not match the media are errors naming the position', () => {
  assert.throws(() => rowPositions([1, IMG, IMG], new MediaCursor({ images: [{ t: 1, h: 4, w: 4 }], videos: [] }, spec('qwen2_vl'))), /image block at position 1 .* 4 tokens, but 2 placeholders follow/);
  assert.throws(() => rowPositions([IMG], new MediaCursor({ images: [], videos: [] }, spec('qwen2_vl'))), /image placeholder at position 0 has no image left/);
  const c = new MediaCursor({ images: [{ t: 1, h: 2, w: 2 }], videos: [] }, spec('qwen2_vl'));
  rowPositions([1, 2], c);
  assert.throws(() => c.finish(), /1 image\(s\) and 0 video\(s\) given, but the tokens hold placeholders for 0 image/);
});

test('window layout: 8×8-patch windows in raster order, partial windows at the edges, no empty windows', () => {
  // 6×10 merged cells with 4×4 windows: windows of 16, 16, 8 (top row) and 8, 8, 4 (bottom).
  const w = windowLayout([{ t: 1, h: 12, w: 20 }], 112, 2, 14);
  assert.deepEqual(w.cuWindowSeqlens, [0, 64, 128, 160, 192, 224, 240].map((x) => x));
  assert.deepEqual(Array.from(w.windowIndex.subarray(0, 5)), [0, 1, 2, 3, 10]);
  assert.equal(new Set(w.windowIndex).size, 60);
});

test('bilinear taps: align-corners endpoints hit table corners with weight 1', () => {
  const taps = bilinearTaps([{ t: 1, h: 2, w: 2 }], 48, 2);
  // Patch (0,0) → table (0,0); patch (1,1) → table (47,47).
  assert.equal(taps.indices[0][0], 0);
  assert.equal(taps.weights[0][0], 1);
  assert.equal(taps.indices[0][3], 47 * 48 + 47);
  assert.equal(taps.weights[0][3], 1);
  for (let k = 1; k < 4; k++) assert.equal(taps.weights[k][0], 0);
});
