import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, existsSync } from 'node:fs';
import * as T from '../../src/tensor/index.ts';
import {
  applyRope, ropeInvFreq, rope1dTable, rope2dFreqs, rope2dTable, mropeTable, mropeAxisOf, visionPatchPositions, ropeCosSin,
} from '../../src/tensor/ops/rope.ts';
import { gradcheck, randomTensor, randomArray } from '../helpers/gradcheck.ts';

const { tidy, tensor } = T;
const GOLDEN = '/work/shared/golden';

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length, `length ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** Minimal safetensors reader (F32 only) for the golden files; src/io is someone else's. */
function readSafetensors(path: string): Map<string, { shape: number[]; data: Float32Array }> {
  const buf = readFileSync(path);
  const hlen = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + hlen).toString('utf8')) as Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
  const out = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const [name, h] of Object.entries(header)) {
    if (name === '__metadata__' || h.dtype !== 'F32') continue;
    const [b, e] = h.data_offsets;
    const bytes = buf.subarray(8 + hlen + b, 8 + hlen + e);
    const copy = new Uint8Array(bytes); // aligned copy
    out.set(name, { shape: h.shape, data: new Float32Array(copy.buffer, 0, (e - b) / 4) });
  }
  return out;
}

/** JS reference of the rotate-half rotation for one [N, H, D] tensor with per-token full-width angles. */
function refRope(x: number[], N: number, H: number, D: number, R: number, cosFull: (n: number, j: number) => number, sinFull: (n: number, j: number) => number): number[] {
  const y = [...x];
  const h = R / 2;
  for (let n = 0; n < N; n++)
    for (let hd = 0; hd < H; hd++) {
      const o = (n * H + hd) * D;
      for (let j = 0; j < R; j++) {
        const rot = j < h ? -x[o + j + h] : x[o + j - h];
        y[o + j] = x[o + j] * cosFull(n, j) + rot * sinFull(n, j);
      }
    }
  return y;
}

test('applyRope forward: half and full tables, partial rotary dim, batch-shared tables', () => {
  tidy(() => {
    for (const dt of ['float32', 'float64'] as const) {
      const [B, Tn, H, D] = [2, 5, 3, 8];
      const x = randomTensor([B, Tn, H, D], 1, dt);
      const xa = x.toArray();
      // half table [T, D/2] shared over the batch
      const ang = randomArray(Tn * D / 2, 2, 3);
      const cos = tensor(ang.map(Math.cos), [Tn, D / 2], dt);
      const sin = tensor(ang.map(Math.sin), [Tn, D / 2], dt);
      const ca = cos.toArray(), sa = sin.toArray();
      const y = applyRope(x, cos, sin);
      const ref = refRope(xa, B * Tn, H, D, D, (n, j) => ca[(n % Tn) * 4 + (j % 4)], (n, j) => sa[(n % Tn) * 4 + (j % 4)]);
      const tol = dt === 'float32' ? 2e-6 : 1e-14;
      assert.ok(maxAbsDiff(y.toArray(), ref) <= tol, `half ${dt}: max abs diff ${maxAbsDiff(y.toArray(), ref)}`);
      // full table [B, T, D] (per-batch positions)
      const angF = randomArray(B * Tn * D, 3, 3);
      const cosF = tensor(angF.map(Math.cos), [B, Tn, D], dt), sinF = tensor(angF.map(Math.sin), [B, Tn, D], dt);
      const cfa = cosF.toArray(), sfa = sinF.toArray();
      const yF = applyRope(x, cosF, sinF);
      const refF = refRope(xa, B * Tn, H, D, D, (n, j) => cfa[n * D + j], (n, j) => sfa[n * D + j]);
      assert.ok(maxAbsDiff(yF.toArray(), refF) <= tol, `full ${dt}: max abs diff ${maxAbsDiff(yF.toArray(), refF)}`);
      // partial rotary dim 4 of 8 (half table width 2): channels 4..7 pass through
      const angP = randomArray(Tn * 2, 4, 3);
      const cosP = tensor(angP.map(Math.cos), [1, Tn, 2], dt), sinP = tensor(angP.map(Math.sin), [1, Tn, 2], dt);
      const cpa = cosP.toArray(), spa = sinP.toArray();
      const yP = applyRope(x, cosP, sinP, { rotaryDim: 4 });
      const refP = refRope(xa, B * Tn, H, D, 4, (n, j) => cpa[(n % Tn) * 2 + (j % 2)], (n, j) => spa[(n % Tn) * 2 + (j % 2)]);
      assert.ok(maxAbsDiff(yP.toArray(), refP) <= tol, `partial ${dt}: max abs diff ${maxAbsDiff(yP.toArray(), refP)}`);
    }
  });
});

test('applyRope gradients (transpose rotation), float64 gradcheck', () => {
  tidy(() => {
    const ang = randomArray(4 * 3, 5, 3);
    const cos = tensor(ang.map(Math.cos), [4, 3], 'float64'), sin = tensor(ang.map(Math.sin), [4, 3], 'float64');
    gradcheck((x) => applyRope(x, cos, sin), [randomTensor([2, 4, 2, 6], 6)]);
    const angF = randomArray(4 * 6, 7, 3);
    const cosF = tensor(angF.map(Math.cos), [4, 6], 'float64'), sinF = tensor(angF.map(Math.sin), [4, 6], 'float64');
    gradcheck((x) => applyRope(x, cosF, sinF), [randomTensor([4, 2, 6], 8)]);
    const cosP = T.narrow(cos, 1, 0, 2), sinP = T.narrow(sin, 1, 0, 2);
    gradcheck((x) => applyRope(x, cosP, sinP, { rotaryDim: 4 }), [randomTensor([4, 3, 6], 9)]);
    // float32 tables are cast to the input's dtype
    const c32 = T.cast(cos, 'float32'), s32 = T.cast(sin, 'float32');
    gradcheck((x) => applyRope(x, c32, s32), [randomTensor([4, 1, 6], 10)]);
  });
});

test('rope1dTable and ropeInvFreq follow the float32 reference formula', () => {
  tidy(() => {
    const inv = ropeInvFreq(8, 10000);
    assert.deepEqual(Array.from(inv), [0, 1, 2, 3].map((k) => Math.fround(1 / Math.fround(10000 ** Math.fround((2 * k) / 8)))));
    const pos = [0, 1, 5, 17, 1000];
    const { cos, sin } = rope1dTable(pos, { dim: 8, theta: 10000 });
    assert.deepEqual(cos.shape, [5, 4]);
    const refC = pos.flatMap((p) => Array.from(inv, (f) => Math.fround(Math.cos(Math.fround(p * f)))));
    const refS = pos.flatMap((p) => Array.from(inv, (f) => Math.fround(Math.sin(Math.fround(p * f)))));
    assert.deepEqual(cos.toArray(), refC);
    assert.deepEqual(sin.toArray(), refS);
    const t64 = rope1dTable(tensor(pos, [5], 'int64'), { dim: 8, theta: 10000, dtype: 'float64' });
    assert.ok(maxAbsDiff(t64.cos.toArray(), refC) < 1e-7);
  });
});

test('2-D vision positions: merge-window order = reshape(h/2,2,w/2,2).permute(0,2,1,3); raster order', () => {
  const [h, w] = [4, 6];
  const mw = visionPatchPositions([{ h, w }]);
  const ref: number[] = [];
  for (let a = 0; a < h / 2; a++) for (let c = 0; c < w / 2; c++) for (let b = 0; b < 2; b++) for (let d = 0; d < 2; d++) ref.push(a * 2 + b, c * 2 + d);
  assert.deepEqual(Array.from(mw), ref);
  const ra = visionPatchPositions([[2, 2, 4]], 'raster');
  assert.deepEqual(Array.from(ra.subarray(0, 16)), [0, 0, 0, 1, 0, 2, 0, 3, 1, 0, 1, 1, 1, 2, 1, 3]);
  assert.deepEqual(Array.from(ra.subarray(16)), Array.from(ra.subarray(0, 16)), 'frames repeat');
  assert.throws(() => visionPatchPositions([{ h: 3, w: 4 }]), /visionPatchPositions: grid 0 \(h=3, w=4\) is not divisible by mergeSize 2/);
  // angles: channels [0, F/2) follow the row, [F/2, F) the column
  tidy(() => {
    const f = rope2dFreqs([{ h, w }], { headDim: 16 }).toArray();
    const inv = ropeInvFreq(8, 10000);
    for (let n = 0; n < h * w; n++)
      for (let j = 0; j < 8; j++) assert.equal(f[n * 8 + j], Math.fround(mw[2 * n + (j < 4 ? 0 : 1)] * inv[j % 4]));
    // a large grid takes the per-distinct-position lookup path: same values as the direct formula
    const grids = [{ t: 2, h: 12, w: 20 }, { h: 8, w: 4 }];
    const pos = visionPatchPositions(grids);
    const tab = rope2dTable(grids, { headDim: 16 });
    const big = rope2dFreqs(grids, { headDim: 16 }).toArray();
    assert.deepEqual(tab.cos.toArray(), big.map((a) => Math.fround(Math.cos(a))));
    assert.deepEqual(tab.sin.toArray(), big.map((a) => Math.fround(Math.sin(a))));
    assert.equal(big.length, pos.length * 4);
  });
});

test('M-RoPE frequency sections: contiguous (Qwen2-VL) and interleaved (Qwen3-VL)', () => {
  const count = (a: Int32Array): number[] => [0, 1, 2].map((v) => a.filter((x) => x === v).length);
  const q2 = mropeAxisOf([16, 24, 24], 64);
  assert.deepEqual(count(q2), [16, 24, 24]);
  assert.deepEqual([q2[15], q2[16], q2[39], q2[40]], [0, 1, 1, 2]);
  const q3 = mropeAxisOf([24, 20, 20], 64, true);
  assert.deepEqual(count(q3), [24, 20, 20]);
  assert.deepEqual(Array.from(q3.subarray(0, 7)), [0, 1, 2, 0, 1, 2, 0]);
  assert.deepEqual(Array.from(q3.subarray(58)), [1, 2, 0, 0, 0, 0]);
  assert.deepEqual(Array.from(mropeAxisOf([4, 2, 2], 8, true)), [0, 1, 2, 0, 1, 2, 0, 0]);
  assert.throws(() => mropeAxisOf([2, 3, 2], 8), /mropeAxisOf: section \[2,3,2\] sums to 7, the head has 8 frequencies/);
});

const FAMILIES = [
  { dir: 'qwen2_vl_tiny', theta: 1e6, section: [2, 3, 3], interleaved: false },
  { dir: 'qwen2_5_vl_tiny', theta: 1e6, section: [2, 3, 3], interleaved: false },
  { dir: 'qwen3_vl_moe_tiny', theta: 5e6, section: [4, 2, 2], interleaved: true },
];

test('golden: text.rotary_cos (M-RoPE) and vision*.rotary_freqs (2-D) of every case', { skip: !existsSync(GOLDEN) && 'no golden data' }, (t) => {
  let cases = 0;
  for (const fam of FAMILIES) {
    const dir = `${GOLDEN}/${fam.dir}/cases`;
    for (const name of ['one_image', 'two_images', 'text_only', 'batch2_leftpad', 'video']) {
      if (!existsSync(`${dir}/${name}.json`)) continue;
      cases++;
      const meta = JSON.parse(readFileSync(`${dir}/${name}.json`, 'utf8'));
      const tensors = readSafetensors(`${dir}/${name}.safetensors`);
      tidy(() => {
        const pid = meta.position_ids as number[][][]; // [3, B, S]
        const [B, S] = [pid[0].length, pid[0][0].length];
        const posT = tensor(Int32Array.from(pid.flat(2)), [3, B, S]);
        const { cos } = mropeTable(posT, { headDim: 16, theta: fam.theta, section: fam.section, interleaved: fam.interleaved });
        assert.deepEqual(cos.shape, [B, S, 8]);
        const gold = tensors.get('text.rotary_cos')!;
        assert.deepEqual(gold.shape, [B, S, 16]);
        // golden is cos(cat(f, f)): both halves equal our half table
        const ours = cos.toArray();
        const full: number[] = [];
        for (let r = 0; r < B * S; r++) full.push(...ours.slice(r * 8, r * 8 + 8), ...ours.slice(r * 8, r * 8 + 8));
        const dText = maxAbsDiff(full, gold.data);
        t.diagnostic(`${fam.dir}/${name} text.rotary_cos [${gold.shape}] max abs diff ${dText}`);
        assert.ok(dText <= 1e-6, `${fam.dir}/${name} text.rotary_cos: max abs diff ${dText}`);
        for (const [key, gridKey] of [['vision.rotary_freqs', 'image_grid_thw'], ['vision_video.rotary_freqs', 'video_grid_thw']]) {
          const g = tensors.get(key);
          if (!g) continue;
          const grids = meta[gridKey] as [number, number, number][];
          const f = rope2dFreqs(grids, { headDim: 16 });
          assert.deepEqual(f.shape, g.shape);
          const dVis = maxAbsDiff(f.toArray(), g.data);
          t.diagnostic(`${fam.dir}/${name} ${key} [${g.shape}] max abs diff ${dVis}`);
          assert.ok(dVis <= 1e-6, `${fam.dir}/${name} ${key}: max abs diff ${dVis}`);
          // the cos table is cos of those angles
          const tab = rope2dTable(grids, { headDim: 16 });
          const dCos = maxAbsDiff(tab.cos.toArray(), Array.from(g.data, (a) => Math.cos(a)));
          assert.ok(dCos <= 1e-6, `${key} cos: max abs diff ${dCos}`);
        }
      });
    }
  }
  assert.equal(cases, 14);
});

test('applyRope with golden tables equals the HF formula q·cos + rotate_half(q)·sin', () => {
  tidy(() => {
    // Qwen3-style interleaved tables on a [S, H, 16] tensor, compared with explicit full-width emb.
    const S = 6;
    const pos = tensor(Int32Array.from([0, 1, 2, 3, 3, 3, 0, 1, 2, 3, 4, 4, 0, 1, 2, 2, 3, 4]), [3, S]);
    const { cos, sin } = mropeTable(pos, { headDim: 16, theta: 5e6, section: [4, 2, 2], interleaved: true });
    const x = randomTensor([S, 2, 16], 11, 'float32');
    const y = applyRope(x, cos, sin).toArray();
    const ca = cos.toArray(), sa = sin.toArray();
    const ref = refRope(x.toArray(), S, 2, 16, 16, (n, j) => ca[n * 8 + (j % 8)], (n, j) => sa[n * 8 + (j % 8)]);
    assert.ok(maxAbsDiff(y, ref) <= 2e-6, `max abs diff ${maxAbsDiff(y, ref)}`);
  });
});

test('applyRope: 1 vs 2 threads identical; portable vs AVX paths agree', () => {
  const run = (): number[] =>
    tidy(() => {
      const x = randomTensor([300, 4, 64], 12, 'float32');
      const { cos, sin } = rope1dTable(Array.from({ length: 300 }, (_, i) => i * 3), { dim: 64, theta: 1e6 });
      const y = applyRope(x, cos, sin);
      x.requiresGrad = true;
      const y2 = applyRope(x, cos, sin);
      T.backward(y2, { grad: y });
      return [...y.toArray(), ...x.grad!.toArray()];
    });
  const prev = T.numThreads();
  try {
    T.setNumThreads(1);
    const one = run();
    T.setNumThreads(2);
    assert.equal(maxAbsDiff(one, run()), 0, '1 vs 2 threads');
    T.native.setIsa('portable');
    const portable = run();
    T.native.setIsa('avx512');
    const d = maxAbsDiff(portable, one);
    assert.ok(d <= 1e-6, `portable vs ${T.native.cpu.level}: max abs diff ${d}`);
  } finally {
    T.setNumThreads(prev);
    T.native.setIsa('avx512');
  }
});

test('rope errors name the op and the shapes', () => {
  tidy(() => {
    const x = randomTensor([4, 2, 8], 13, 'float32');
    const c = T.zeros([4, 4]);
    assert.throws(() => applyRope(x, T.zeros([4, 3]), T.zeros([4, 3])), /applyRope: table width 3 .* must be rotaryDim\/2 = 4 or rotaryDim = 8/);
    assert.throws(() => applyRope(x, c, T.zeros([4, 5])), /applyRope: cos \[4,4\] and sin \[4,5\] must have one shape/);
    assert.throws(() => applyRope(x, T.zeros([3, 4]), T.zeros([3, 4])), /applyRope: table dims \[3\] of cos \[3,4\] do not match the token dims of x \[4,2,8\]/);
    assert.throws(() => applyRope(x, c, c, { rotaryDim: 5 }), /applyRope: rotaryDim 5 must be even/);
    assert.throws(() => applyRope(T.zeros([4, 2, 8], 'int32'), c, c), /applyRope: x must be float32 or float64/);
    assert.throws(() => mropeTable(tensor(Int32Array.from([1, 2]), [2, 1]), { headDim: 16, theta: 1e4, section: [2, 3, 3] }), /mropeTable: position ids must be \[3, S\] or \[3, B, S\]/);
    assert.throws(() => rope2dTable([{ h: 4, w: 4 }], { headDim: 6 }), /rope2d: headDim 6 must be a multiple of 4/);
    assert.throws(() => ropeCosSin({ data: new Int32Array(4), count: 4, axes: 1, rowStride: 1, axisStride: 0 }, new Float32Array(2), Int32Array.from([0, 1])), /ropeCosSin: index 1 at position 1 of 'axisOf' is out of range \[0, 1\)/);
    assert.throws(() => ropeCosSin({ data: new Int32Array(4), count: 5, axes: 1, rowStride: 1, axisStride: 0 }, new Float32Array(2), new Int32Array(2)), /ropeCosSin: argument 'positions' needs 5 elements but has 4/);
    assert.deepEqual(applyRope(T.zeros([0, 2, 8]), T.zeros([0, 4]), T.zeros([0, 4])).shape, [0, 2, 8]);
    const N = T.native as unknown as Record<string, (...a: unknown[]) => void>;
    assert.throws(() => N.ropeApply(new Float32Array(64), 4, 2, 8, new Float32Array(16), new Float32Array(16), 4, 4, 8, false, new Float32Array(32)), /ropeApply: argument 'out' needs 64/);
    assert.throws(() => N.ropeApply(new Float32Array(64), 4, 2, 8, new Float32Array(16), new Float64Array(16), 4, 4, 8, false, new Float32Array(64)), /ropeApply: argument 'sin' must be a Float32Array/);
  });
});

test('no native memory is leaked by rope tables and applyRope forward + backward', () => {
  const before = T.nativeMemory().bytes;
  tidy(() => {
    const x = randomTensor([4, 2, 6], 14, 'float32');
    x.requiresGrad = true;
    const { cos, sin } = rope1dTable([0, 1, 2, 3], { dim: 6, theta: 100, dtype: 'float64' }); // cast path
    T.backward(applyRope(x, cos, sin), { grad: T.onesLike(x) });
    mropeTable(tensor(Int32Array.from([0, 1, 2, 0, 1, 2, 0, 1, 2]), [3, 3]), { headDim: 16, theta: 1e4, section: [2, 3, 3] });
    rope2dTable([[1, 2, 2]], { headDim: 16 });
  });
  assert.equal(T.nativeMemory().bytes, before);
});
