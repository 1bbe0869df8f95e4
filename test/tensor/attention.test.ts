import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  Tensor, tensor, tidy, backward, native, select, narrow,
} from '../../src/tensor/index.ts';
import { attention, attentionDecode } from '../../src/tensor/ops/attention.ts';
import { gradcheck, randomArray, randomTensor } from '../helpers/gradcheck.ts';
import { withThreads } from '../helpers/settings.ts';
import { refAttention as refAttentionWithLse } from '../helpers/attention_ref.ts';

/** The reference output alone (test/helpers/attention_ref.ts). */
function refAttention(...args: Parameters<typeof refAttentionWithLse>): Float64Array {
  return refAttentionWithLse(...args).out;
}

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length, 'length mismatch');
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

function assertClose(a: ArrayLike<number>, b: ArrayLike<number>, tol: number, what: string): void {
  const d = maxDiff(a, b);
  assert.ok(d <= tol, `${what}: max abs diff ${d} > ${tol}`);
}

function assertEqualArrays(a: ArrayLike<number>, b: ArrayLike<number>, what: string): void {
  assert.equal(a.length, b.length);
  for (let i = 0; i < a.length; i++) {
    if (!Object.is(a[i], b[i])) assert.fail(`${what}: element ${i} differs (${a[i]} vs ${b[i]}, max abs diff ${maxDiff(a, b)})`);
  }
}

function withIsa<R>(isa: 'portable' | 'avx512', fn: () => R): R {
  native.setIsa(isa);
  try {
    return fn();
  } finally {
    native.setIsa('avx512');
  }
}

interface Case { name: string; cu: number[]; Hq: number; Hkv: number; D: number; causal: boolean }
const CASES: Case[] = [
  { name: 'one sequence, non-causal', cu: [0, 37], Hq: 2, Hkv: 2, D: 16, causal: false },
  { name: 'one sequence, causal, 2 blocks', cu: [0, 100], Hq: 2, Hkv: 2, D: 32, causal: true },
  { name: 'packed varlen 1/64/65/70, GQA 4:2, D 24, causal', cu: [0, 1, 65, 130, 200], Hq: 4, Hkv: 2, D: 24, causal: true },
  { name: 'packed varlen, GQA 3:1, D 80, non-causal', cu: [0, 3, 3, 131, 140], Hq: 3, Hkv: 1, D: 80, causal: false },
  // Long enough (mean length >= 256) for the kernels' head-major operand copies.
  { name: 'long sequence (head-major copy path), GQA 4:2, causal', cu: [0, 7, 330], Hq: 4, Hkv: 2, D: 16, causal: true },
];

for (const c of CASES) {
  test(`attention forward matches the naive reference: ${c.name}`, () => {
    const T = c.cu[c.cu.length - 1];
    for (const dtype of ['float32', 'float64'] as const) {
      for (const isa of ['avx512', 'portable'] as const) {
        tidy(() => {
          const q = randomTensor([T, c.Hq, c.D], 1, dtype, 2);
          const k = randomTensor([T, c.Hkv, c.D], 2, dtype, 2);
          const v = randomTensor([T, c.Hkv, c.D], 3, dtype);
          const out = withIsa(isa, () => attention(q, k, v, { causal: c.causal, cuSeqlens: c.cu }));
          assert.deepEqual(out.shape, [T, c.Hq, c.D]);
          const ref = refAttention(q.toArray(), k.toArray(), v.toArray(), T, c.Hq, c.Hkv, c.D, c.cu, c.causal);
          assertClose(out.toArray(), ref, dtype === 'float32' ? 3e-6 : 1e-13, `${dtype} ${isa}`);
        });
      }
    }
  });
}

test('attention: custom scale, and the packed result equals each sequence run alone (bitwise)', () => {
  tidy(() => {
    const cu = [0, 5, 70, 71, 150];
    const T = 150, H = 2, D = 20;
    const q = randomTensor([T, H, D], 4, 'float32');
    const k = randomTensor([T, H, D], 5, 'float32');
    const v = randomTensor([T, H, D], 6, 'float32');
    const packed = attention(q, k, v, { causal: true, cuSeqlens: cu, scale: 0.7 });
    assertClose(packed.toArray(), refAttention(q.toArray(), k.toArray(), v.toArray(), T, H, H, D, cu, true, 0.7), 3e-6, 'scale 0.7');
    for (let s = 0; s + 1 < cu.length; s++) {
      const n = cu[s + 1] - cu[s];
      const alone = attention(narrow(q, 0, cu[s], n), narrow(k, 0, cu[s], n), narrow(v, 0, cu[s], n), { causal: true, scale: 0.7 });
      assertEqualArrays(alone.toArray(), narrow(packed, 0, cu[s], n).toArray(), `sequence ${s}`);
    }
  });
});

test('attention batch layout [B, S, H, D] with key padding lengths', () => {
  tidy(() => {
    const B = 3, S = 70, Hq = 4, Hkv = 2, D = 16;
    const lengths = [70, 1, 33];
    const q = randomTensor([B, S, Hq, D], 7, 'float32');
    const k = randomTensor([B, S, Hkv, D], 8, 'float32');
    const v = randomTensor([B, S, Hkv, D], 9, 'float32');
    for (const causal of [false, true]) {
      const out = attention(q, k, v, { causal, lengths });
      assert.deepEqual(out.shape, [B, S, Hq, D]);
      const cu: number[] = [];
      const ref = refAttention(q.toArray(), k.toArray(), v.toArray(), B * S, Hq, Hkv, D, [0, 70, 71, 140, 173, 210], causal);
      // Valid rows equal the reference of each row's prefix; padded query rows are zero.
      const o = out.toArray();
      for (let b = 0; b < B; b++) cu.push(b * S);
      for (let b = 0; b < B; b++) {
        const lo = b * S * Hq * D, mid = lo + lengths[b] * Hq * D, hi = (b + 1) * S * Hq * D;
        assertClose(o.slice(lo, mid), ref.slice(lo, mid), 3e-6, `row ${b} causal=${causal}`);
        assert.ok(o.slice(mid, hi).every((x) => x === 0), `row ${b}: padded query rows must be zero`);
      }
    }
  });
});

test('attention accepts strided views (slices of a fused QKV tensor) without changing results', () => {
  tidy(() => {
    for (const T of [90, 300]) { // 300: head-major copies read the strided views
    const H = 3, D = 16;
    const qkv = randomTensor([T, 3, H, D], 10, 'float32');
    const q = select(qkv, 1, 0), k = select(qkv, 1, 1), v = select(qkv, 1, 2);
    assert.ok(!q.isContiguous);
    const a = attention(q, k, v, { causal: true }).toArray();
    const b = attention(tensor(q.toArray(), [T, H, D]), tensor(k.toArray(), [T, H, D]), tensor(v.toArray(), [T, H, D]), { causal: true }).toArray();
    assertEqualArrays(a, b, `strided vs contiguous, T ${T}`);
    }
  });
});

test('attention gradcheck (float64): packed varlen, causal, GQA', () => {
  const q = randomTensor([9, 4, 5], 11), k = randomTensor([9, 2, 5], 12), v = randomTensor([9, 2, 5], 13);
  gradcheck((a, b, c) => attention(a, b, c, { causal: true, cuSeqlens: [0, 4, 4, 5, 9] }), [q, k, v]);
  gradcheck((a, b, c) => attention(a, b, c, { causal: false, cuSeqlens: [0, 6, 9], scale: 0.9 }), [q, k, v]);
  for (const t of [q, k, v]) t.dispose();
});

test('attention gradcheck (float64): causal sequence spanning several key/query blocks', () => {
  const q = randomTensor([70, 2, 4], 14, 'float64', 2), k = randomTensor([70, 1, 4], 15, 'float64', 2), v = randomTensor([70, 1, 4], 16);
  gradcheck((a, b, c) => attention(a, b, c, { causal: true }), [q, k, v], { maxProbes: 20 });
  for (const t of [q, k, v]) t.dispose();
});

test('attention gradcheck (float64): long causal sequence (head-major copies, dQ scatter), GQA', () => {
  const q = randomTensor([270, 2, 4], 27, 'float64', 2), k = randomTensor([270, 1, 4], 28, 'float64', 2), v = randomTensor([270, 1, 4], 29);
  gradcheck((a, b, c) => attention(a, b, c, { causal: true }), [q, k, v], { maxProbes: 12 });
  for (const t of [q, k, v]) t.dispose();
});

test('attention gradcheck (float64): batch layout with padding lengths, GQA', () => {
  const q = randomTensor([2, 6, 2, 3], 17), k = randomTensor([2, 6, 1, 3], 18), v = randomTensor([2, 6, 1, 3], 19);
  gradcheck((a, b, c) => attention(a, b, c, { causal: true, lengths: [6, 4] }), [q, k, v]);
  for (const t of [q, k, v]) t.dispose();
});

/** Gradients of <attention(q,k,v), w> for q, k, v (with a strided output gradient w). */
function grads(q: Tensor, k: Tensor, v: Tensor, opts: Parameters<typeof attention>[3], seed: number): number[][] {
  return tidy(() => {
    for (const t of [q, k, v]) t.requiresGrad = true;
    const out = attention(q, k, v, opts);
    const wide = randomTensor([out.shape[0], 2, ...out.shape.slice(1)], seed, q.dtype as 'float32');
    backward(out, { grad: select(wide, 1, 1) });
    const r = [q, k, v].map((t) => t.grad!.toArray());
    for (const t of [q, k, v]) {
      t.grad!.dispose();
      t.grad = null;
      t.requiresGrad = false;
    }
    return r;
  });
}

for (const [label, cu] of [['packed varlen', [0, 1, 65, 130, 200]], ['long sequence (head-major copies)', [0, 290]]] as const) {
  test(`attention backward, ${label}: float32 AVX and portable paths match float64; threads do not change results`, () => {
    const T = cu[cu.length - 1], Hq = 4, Hkv = 2, D = 24;
    const data = [randomArray(T * Hq * D, 20, 2), randomArray(T * Hkv * D, 21, 2), randomArray(T * Hkv * D, 22)];
    const shapes = [[T, Hq, D], [T, Hkv, D], [T, Hkv, D]];
    const make = (dtype: 'float32' | 'float64') => data.map((d, i) => tensor(d, shapes[i], dtype));
    const opts = { causal: true, cuSeqlens: [...cu] };
    const x64 = make('float64');
    const g64 = grads(x64[0], x64[1], x64[2], opts, 23);
    const x32 = make('float32');
    const gAvx = grads(x32[0], x32[1], x32[2], opts, 23);
    const gPort = withIsa('portable', () => grads(x32[0], x32[1], x32[2], opts, 23));
    ['dq', 'dk', 'dv'].forEach((name, i) => {
      assertClose(gAvx[i], g64[i], 2e-5, `${name} avx512 f32 vs f64`);
      assertClose(gPort[i], g64[i], 2e-5, `${name} portable f32 vs f64`);
    });
    const g1 = withThreads(1, () => grads(x32[0], x32[1], x32[2], opts, 23));
    const g2 = withThreads(2, () => grads(x32[0], x32[1], x32[2], opts, 23));
    ['dq', 'dk', 'dv'].forEach((name, i) => assertEqualArrays(g1[i], g2[i], `${name} 1 vs 2 threads`));
    for (const t of [...x64, ...x32]) t.dispose();
  });
}

test('attention forward: 1 vs 2 threads give identical results', () => {
  tidy(() => {
    const q = randomTensor([300, 4, 64], 24, 'float32'), k = randomTensor([300, 2, 64], 25, 'float32'), v = randomTensor([300, 2, 64], 26, 'float32');
    const opts = { causal: true, cuSeqlens: [0, 250, 300] };
    const a = withThreads(1, () => attention(q, k, v, opts).toArray());
    const b = withThreads(2, () => attention(q, k, v, opts).toArray());
    assertEqualArrays(a, b, 'forward 1 vs 2 threads');
  });
});

/** Packs rows [0, len) of a [len, H, D] tensor into cache [B, H, Smax, D] slot b (JS, test-only). */
function fillCache(cache: Float64Array | Float32Array, src: number[], b: number, len: number, H: number, Smax: number, D: number): void {
  for (let t = 0; t < len; t++)
    for (let h = 0; h < H; h++)
      for (let d = 0; d < D; d++) cache[((b * H + h) * Smax + t) * D + d] = src[(t * H + h) * D + d];
}

for (const Tq of [1, 3]) {
  test(`attentionDecode equals the last ${Tq} row(s) of full causal attention (split-K, GQA, ragged lengths)`, () => {
    tidy(() => {
      const B = 3, Hq = 4, Hkv = 2, D = 64, Smax = 1200;
      const lengths = [1100, 37, 3];
      const kc = tensor(new Float32Array(B * Hkv * Smax * D).fill(Number.NaN), [B, Hkv, Smax, D]); // garbage past lengths
      const vc = tensor(new Float32Array(B * Hkv * Smax * D).fill(Number.NaN), [B, Hkv, Smax, D]);
      const qd = new Float32Array(B * Tq * Hq * D);
      const full: number[][] = [];
      for (let b = 0; b < B; b++) {
        const L = lengths[b];
        const q = randomTensor([L, Hq, D], 30 + b, 'float32', 2), k = randomTensor([L, Hkv, D], 40 + b, 'float32', 2);
        const v = randomTensor([L, Hkv, D], 50 + b, 'float32');
        fillCache(kc.data(), k.toArray(), b, L, Hkv, Smax, D);
        fillCache(vc.data(), v.toArray(), b, L, Hkv, Smax, D);
        qd.set(q.toArray().slice((L - Tq) * Hq * D), b * Tq * Hq * D);
        full.push(attention(q, k, v, { causal: true }).toArray().slice((L - Tq) * Hq * D));
      }
      const q = Tq === 1 ? tensor(qd, [B, Hq, D]) : tensor(qd, [B, Tq, Hq, D]);
      for (const isa of ['avx512', 'portable'] as const) {
        const out = withIsa(isa, () => attentionDecode(q, kc, vc, lengths));
        assert.deepEqual(out.shape, q.shape);
        const o = out.toArray();
        for (let b = 0; b < B; b++) assertClose(o.slice(b * Tq * Hq * D, (b + 1) * Tq * Hq * D), full[b], 3e-6, `${isa} sequence ${b}`);
      }
      const o1 = withThreads(1, () => attentionDecode(q, kc, vc, lengths).toArray());
      const o2 = withThreads(2, () => attentionDecode(q, kc, vc, lengths).toArray());
      assertEqualArrays(o1, o2, 'decode 1 vs 2 threads');
    });
  });
}

test('attentionDecode reads a strided cache view (narrowed capacity) and matches the JS reference', () => {
  tidy(() => {
    const B = 1, H = 2, D = 8, cap = 40, L = 21;
    const big = randomTensor([B, H, cap, D], 60, 'float32'), bigV = randomTensor([B, H, cap, D], 61, 'float32');
    const kc = narrow(big, 2, 0, 30), vc = narrow(bigV, 2, 0, 30); // Smax 30, position stride unchanged
    const q = randomTensor([B, H, D], 62, 'float32');
    const out = attentionDecode(q, kc, vc, [L], { scale: 0.5 }).toArray();
    // Reference: one query row against positions [0, L).
    const kk = big.toArray(), vv = bigV.toArray(), qq = q.toArray();
    const kt: number[] = [], vt: number[] = [];
    for (let t = 0; t < L; t++) for (let h = 0; h < H; h++) for (let d = 0; d < D; d++) {
      kt.push(kk[(h * cap + t) * D + d]);
      vt.push(vv[(h * cap + t) * D + d]);
    }
    const qt = new Array<number>(L * H * D).fill(0);
    for (let i = 0; i < H * D; i++) qt[(L - 1) * H * D + i] = qq[i];
    const ref = refAttention(qt, kt, vt, L, H, H, D, [0, L], true, 0.5).slice((L - 1) * H * D);
    assertClose(out, ref, 2e-6, 'strided cache');
  });
});

test('the fast exp2 used by the AVX-512 kernels: relative error < 1e-7, exact 0 for -inf and underflow', () => {
  const n = 400001;
  const x = new Float32Array(n + 5);
  for (let i = 0; i < n; i++) x[i] = -126 + (253 * i) / (n - 1);
  x.set([-Infinity, -127, -200, 0, Number.NaN], n);
  const y = new Float32Array(x.length);
  (native as unknown as { attentionFastExp2(x: Float32Array, y: Float32Array): void }).attentionFastExp2(x, y);
  let worst = 0;
  for (let i = 0; i < n; i++) {
    const e = 2 ** x[i];
    worst = Math.max(worst, Math.abs(y[i] - e) / e);
  }
  assert.ok(worst < 1e-7, `max relative error ${worst}`);
  assert.deepEqual(Array.from(y.subarray(n, n + 4)), [0, 0, 0, 1]);
  assert.ok(Number.isNaN(y[n + 4]));
});

test('attention and attentionDecode reject bad inputs with messages naming the op and shapes', () => {
  tidy(() => {
    const q = randomTensor([10, 4, 8], 70, 'float32'), k = randomTensor([10, 2, 8], 71, 'float32'), v = randomTensor([10, 2, 8], 72, 'float32');
    assert.throws(() => attention(q, randomTensor([10, 3, 8], 1, 'float32'), randomTensor([10, 3, 8], 1, 'float32')), /attention: query heads 4 must be a positive multiple of kv heads 3/);
    assert.throws(() => attention(q, randomTensor([9, 2, 8], 1, 'float32'), v), /attention: shapes do not match \(q \[10,4,8\], k \[9,2,8\]/);
    assert.throws(() => attention(q, k, randomTensor([10, 2, 7], 1, 'float32')), /attention: shapes do not match/);
    assert.throws(() => attention(q, k, tensor(v.toArray(), [10, 2, 8], 'float64')), /attention: v is float64 but q is float32/);
    assert.throws(() => attention(q, k, v, { cuSeqlens: [0, 6, 4, 10] }), /attention: cuSeqlens must be non-decreasing/);
    assert.throws(() => attention(q, k, v, { cuSeqlens: [0, 6, 9] }), /attention: cuSeqlens must run from 0 to T = 10/);
    assert.throws(() => attention(q, k, v, { cuSeqlens: [1, 10] }), /attention: cuSeqlens must run from 0 to T = 10/);
    assert.throws(() => attention(q, k, v, { scale: Number.NaN }), /attention: scale must be a finite number/);
    assert.throws(() => attention(q, k, v, { lengths: [10] }), /attention: 'lengths' is for the batch layout/);
    assert.throws(() => attention(randomTensor([10, 32], 1, 'float32'), k, v), /attention: expected q \[T, Hq, D\]/);
    const qb = randomTensor([2, 5, 2, 8], 73, 'float32'), kb = randomTensor([2, 5, 2, 8], 74, 'float32');
    assert.throws(() => attention(qb, kb, kb, { lengths: [5, 6] }), /attention: lengths\[1\] = 6 is not in \[0, 5\]/);
    assert.throws(() => attention(qb, kb, kb, { lengths: [5] }), /attention: lengths has 1 entries for batch 2/);
    const kc = randomTensor([2, 2, 16, 8], 75, 'float32');
    const qd = randomTensor([2, 4, 8], 76, 'float32');
    assert.throws(() => attentionDecode(qd, kc, kc, [16, 17]), /attentionDecode: lengths\[1\] = 17 is not in \[1, 16\]/);
    assert.throws(() => attentionDecode(qd, kc, kc, [0, 3]), /attentionDecode: lengths\[0\] = 0 is not in \[1, 16\]/);
    assert.throws(() => attentionDecode(randomTensor([2, 3, 4, 8], 1, 'float32'), kc, kc, [2, 16]), /attentionDecode: lengths\[0\] = 2 is not in \[3, 16\]/);
    assert.throws(() => attentionDecode(randomTensor([2, 3, 8], 1, 'float32'), kc, kc, [4, 4]), /attentionDecode: shapes do not match \(q \[2,3,8\], kCache \[2,2,16,8\]/);
    assert.throws(() => attentionDecode(qd, kc, randomTensor([2, 2, 15, 8], 1, 'float32'), [4, 4]), /attentionDecode: expected q/);
    assert.throws(() => attentionDecode(qd, kc, kc, [4]), /attentionDecode: lengths has 1 entries for batch 2/);
    // The kernels check extents themselves (defence in depth for direct callers).
    const kern = native as unknown as { attentionForward(...a: unknown[]): void };
    assert.throws(() => kern.attentionForward(new Float32Array(10), new Float32Array(10), new Float32Array(10), new Float32Array(10),
      new Float32Array(10), new Int32Array([0]), new Int32Array([2]), [2, 1, 1, 8], [8, 8, 8, 8, 8, 8], false, 1), /attentionForward: argument 'q' needs 16 elements but has 10/);
    assert.throws(() => kern.attentionForward(new Float32Array(16), new Float32Array(16), new Float32Array(16), new Float32Array(16),
      new Float32Array(2), new Int32Array([0, 1]), new Int32Array([2, 1]), [2, 1, 1, 8], [8, 8, 8, 8, 8, 8], false, 1), /attentionForward: sequence 1 \(start 1, length 1\) overlaps/);
  });
});
