import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Tensor, tensor, native, select, narrow } from '../../src/tensor/index.ts';
import { attention, attentionDecode, attentionUsesBf16 } from '../../src/tensor/ops/attention.ts';
import { randomTensor } from '../helpers/gradcheck.ts';
import { withPrecision, withThreads } from '../helpers/settings.ts';
import { refAttention as reference } from '../helpers/attention_ref.ts';

interface Bf16Kernels {
  attentionForwardBf16(...a: unknown[]): void;
  attentionForward(...a: unknown[]): void;
  attentionBf16Available(): boolean;
  setIsa(isa: string): void;
}
const K = native as unknown as Bf16Kernels;
const skip = K.attentionBf16Available() ? false : 'no AMX-BF16 on this machine (the bf16 attention forward falls back to f32)';

/** float → bf16 → float, round to nearest even (NaN untouched), like gemm::bf16_round. */
function bf16(x: number): number {
  const f = new Float32Array([x]);
  const u = new Uint32Array(f.buffer);
  if (!Number.isNaN(f[0])) u[0] = (((u[0] + 0x7fff + ((u[0] >>> 16) & 1)) >>> 16) << 16) >>> 0;
  return f[0];
}
const roundAll = (a: ArrayLike<number>): Float64Array => Float64Array.from(a, bf16);


function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length, 'length mismatch');
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

function assertSame(a: ArrayLike<number>, b: ArrayLike<number>, what: string): void {
  assert.equal(a.length, b.length);
  for (let i = 0; i < a.length; i++) {
    if (!Object.is(a[i], b[i])) assert.fail(`${what}: element ${i} differs (${a[i]} vs ${b[i]}, max abs diff ${maxDiff(a, b)})`);
  }
}

/** Runs the bf16 kernel directly on contiguous [T, H, D] float32 arrays; returns out and lse. */
function runKernel(q: Float32Array, k: Float32Array, v: Float32Array, T: number, Hq: number, Hkv: number, D: number,
  cu: number[], causal: boolean, scale = 1 / Math.sqrt(D)): { out: Float32Array; lse: Float32Array } {
  const out = new Float32Array(T * Hq * D).fill(NaN), lse = new Float32Array(T * Hq).fill(NaN);
  const n = cu.length - 1;
  const starts = Int32Array.from({ length: n }, (_, s) => cu[s]);
  const lens = Int32Array.from({ length: n }, (_, s) => cu[s + 1] - cu[s]);
  K.attentionForwardBf16(q, k, v, out, lse, starts, lens, [T, Hq, Hkv, D], [Hq * D, D, Hkv * D, D, Hkv * D, D], causal, scale);
  return { out, lse };
}

const f32 = (t: Tensor): Float32Array => t.data<Float32Array>();

interface Case { T: number; Hq: number; Hkv: number; D: number; causal: boolean; cu?: number[]; qScale?: number }

// Tolerances for v in [-1, 1): P is rounded to bf16 (relative 2^-9 per probability), so an
// output moves by at most ~2^-9 · max|v|; q·k in bf16 products of exactly rounded inputs is
// exact up to f32 accumulation, so the bf16-input reference differs only by P's rounding.
const TOL_OUT = 4e-3, TOL_LSE = 1e-4;

const cases: Case[] = [
  { T: 67, Hq: 2, Hkv: 2, D: 80, causal: false },                              // Qwen2.5-VL head dim, odd length
  { T: 131, Hq: 2, Hkv: 2, D: 72, causal: false, qScale: 3 },                  // Qwen3-VL head dim, peaky softmax
  { T: 131, Hq: 4, Hkv: 2, D: 128, causal: true },                             // LLM prefill: causal GQA
  { T: 150, Hq: 8, Hkv: 1, D: 64, causal: true, cu: [0, 70, 70, 150] },       // causal varlen, an empty sequence
  { T: 200, Hq: 2, Hkv: 2, D: 80, causal: false, cu: [0, 64, 128, 144, 160, 164, 200] }, // vision windows 64/16/4
  { T: 90, Hq: 2, Hkv: 1, D: 40, causal: false, cu: [0, 3, 50, 90] },                  // head dim below one tile
];

test('bf16 attention forward matches a float64 reference on bf16-rounded inputs (out and lse)', { skip }, () => {
  for (const [ci, c] of cases.entries()) {
    const cu = c.cu ?? [0, c.T];
    const q = f32(randomTensor([c.T, c.Hq, c.D], 10 + ci, 'float32', c.qScale ?? 1));
    const k = f32(randomTensor([c.T, c.Hkv, c.D], 20 + ci, 'float32'));
    const v = f32(randomTensor([c.T, c.Hkv, c.D], 30 + ci, 'float32'));
    const got = runKernel(q, k, v, c.T, c.Hq, c.Hkv, c.D, cu, c.causal);
    const ref = reference(roundAll(q), roundAll(k), roundAll(v), c.T, c.Hq, c.Hkv, c.D, cu, c.causal);
    const dOut = maxDiff(got.out, ref.out), dLse = maxDiff(got.lse, ref.lse);
    assert.ok(dOut <= TOL_OUT, `case ${ci} (${JSON.stringify(c)}): out max abs diff ${dOut}`);
    assert.ok(dLse <= TOL_LSE, `case ${ci} (${JSON.stringify(c)}): lse max abs diff ${dLse}`);
    // Unrounded inputs are measurably further away on the peaky case: the kernel does round q and k.
    if (c.qScale) {
      const exact = reference(q, k, v, c.T, c.Hq, c.Hkv, c.D, cu, c.causal);
      assert.ok(maxDiff(got.lse, exact.lse) > 4 * dLse, `case ${ci}: lse is not closer to the bf16-input reference (${dLse} vs ${maxDiff(got.lse, exact.lse)})`);
    }
  }
});

test('bf16 attention: scores that grow along the keys (the running max moves many times) stay accurate', { skip }, () => {
  // Keys grow with their position, so each 128-key block raises the row maximum
  // by more than the kernel's lazy-rescale slack: every rescale path runs.
  const T = 517, H = 2, D = 64;
  const q = f32(randomTensor([T, H, D], 71, 'float32')).map((x) => 0.5 + 0.5 * x);
  const k = f32(randomTensor([T, H, D], 72, 'float32'));
  for (let t = 0; t < T; t++) for (let i = 0; i < H * D; i++) k[t * H * D + i] = 0.25 * k[t * H * D + i] + (6 * t) / T;
  const v = f32(randomTensor([T, H, D], 73, 'float32'));
  for (const causal of [false, true]) {
    const got = runKernel(q, k, v, T, H, H, D, [0, 300, T], causal);
    const ref = reference(roundAll(q), roundAll(k), roundAll(v), T, H, H, D, [0, 300, T], causal);
    const dOut = maxDiff(got.out, ref.out), dLse = maxDiff(got.lse, ref.lse);
    assert.ok(dOut <= TOL_OUT, `causal=${causal}: out max abs diff ${dOut}`);
    assert.ok(dLse <= 2e-4 * 40, `causal=${causal}: lse max abs diff ${dLse}`);
  }
});

test('bf16 attention: one key per sequence returns bf16(v) exactly; rows outside sequences are zero', { skip }, () => {
  const T = 9, H = 2, D = 24;
  const q = f32(randomTensor([T, H, D], 1, 'float32')), k = f32(randomTensor([T, H, D], 2, 'float32'));
  const v = f32(randomTensor([T, H, D], 3, 'float32'));
  const cu = [0, 1, 2, 3, 4, 5, 6, 7]; // tokens 7, 8 belong to no sequence
  const got = runKernel(q, k, v, T, H, H, D, cu, false);
  // P = 1 exactly is rounded to bf16 unchanged; the f32 sum of the same probability may differ from 1 by an ulp.
  for (let i = 0; i < 7 * H * D; i++) {
    if (Math.abs(got.out[i] - bf16(v[i])) > 2.5e-7 * Math.abs(v[i])) assert.fail(`out[${i}] = ${got.out[i]}, want bf16(v) = ${bf16(v[i])}`);
  }
  for (let i = 7 * H * D; i < T * H * D; i++) assert.equal(got.out[i], 0);
  assert.equal(got.lse[7 * H], -Infinity);
});

test('bf16 attention is independent of the thread count', { skip }, () => {
  const q = randomTensor([300, 4, 80], 41, 'float32'), k = randomTensor([300, 2, 80], 42, 'float32');
  const v = randomTensor([300, 2, 80], 43, 'float32');
  withPrecision('bf16', () => {
    for (const opts of [{ causal: true }, { cuSeqlens: [0, 64, 200, 216, 300] }]) {
      const a = withThreads(1, () => attention(q, k, v, opts)), b = withThreads(2, () => attention(q, k, v, opts));
      assertSame(f32(a), f32(b), `1 vs 2 threads ${JSON.stringify(opts)}`);
      a.dispose();
      b.dispose();
    }
  });
});

test('attention under the bf16 switch uses the AMX kernel; off, or with gradients, it is the f32 kernel', { skip }, () => {
  const T = 97, Hq = 4, Hkv = 2, D = 80;
  const q = randomTensor([T, Hq, D], 51, 'float32'), k = randomTensor([T, Hkv, D], 52, 'float32');
  const v = randomTensor([T, Hkv, D], 53, 'float32');
  const opts = { causal: true, cuSeqlens: [0, 40, 97] };
  const direct = (name: 'attentionForward' | 'attentionForwardBf16'): Float32Array => {
    const out = new Float32Array(T * Hq * D), lse = new Float32Array(T * Hq);
    K[name](f32(q), f32(k), f32(v), out, lse, Int32Array.from([0, 40]), Int32Array.from([40, 57]), [T, Hq, Hkv, D],
      [Hq * D, D, Hkv * D, D, Hkv * D, D], true, 1 / Math.sqrt(D));
    return out;
  };
  const f32Out = direct('attentionForward'), bf16Out = direct('attentionForwardBf16');
  assert.ok(maxDiff(f32Out, bf16Out) > 0, 'the bf16 kernel should differ from the f32 one');
  assert.ok(maxDiff(f32Out, bf16Out) < 2e-2, `bf16 vs f32 max abs diff ${maxDiff(f32Out, bf16Out)}`);
  withPrecision('f32', () => {
    assert.equal(attentionUsesBf16(q, k, v), false);
    const o = attention(q, k, v, opts);
    assertSame(f32(o), f32Out, 'switch off');
    o.dispose();
  });
  withPrecision('bf16', () => {
    assert.equal(attentionUsesBf16(q, k, v), true);
    const o = attention(q, k, v, opts);
    assertSame(f32(o), bf16Out, 'switch on');
    o.dispose();
    // Under the portable ISA cap the AMX kernel is unavailable: f32 (portable) path.
    K.setIsa('portable');
    try {
      assert.equal(attentionUsesBf16(q, k, v), false);
    } finally {
      K.setIsa('avx512');
    }
    // Gradients: the forward stays f32 so the f32 backward sees consistent probabilities.
    const qg = randomTensor([T, Hq, D], 51, 'float32');
    qg.requiresGrad = true;
    assert.equal(attentionUsesBf16(qg, k, v), false);
    const og = attention(qg, k, v, opts);
    assertSame(f32(og), f32Out, 'with grad');
    og.dispose();
    qg.dispose();
    assert.equal(attentionUsesBf16(randomTensor([2, 1, 8], 1), randomTensor([2, 1, 8], 2), randomTensor([2, 1, 8], 3)), false, 'float64 stays f64');
  });
  for (const x of [q, k, v]) x.dispose();
});

test('a prefill into an empty KV cache runs on the bf16 kernel under the switch (same result as attention)', { skip }, () => {
  const Tq = 40, Smax = 48, Hq = 4, Hkv = 2, D = 128;
  const q = randomTensor([1, Tq, Hq, D], 81, 'float32');
  const kc = randomTensor([1, Hkv, Smax, D], 82, 'float32'), vc = randomTensor([1, Hkv, Smax, D], 83, 'float32');
  // The same keys as [T, Hkv, D] tensors for attention().
  const kData = f32(kc), vData = f32(vc);
  const kt = new Float32Array(Tq * Hkv * D), vt = new Float32Array(Tq * Hkv * D);
  for (let t = 0; t < Tq; t++) for (let h = 0; h < Hkv; h++) for (let d = 0; d < D; d++) {
    kt[(t * Hkv + h) * D + d] = kData[(h * Smax + t) * D + d];
    vt[(t * Hkv + h) * D + d] = vData[(h * Smax + t) * D + d];
  }
  const k = tensor(kt, [Tq, Hkv, D], 'float32'), v = tensor(vt, [Tq, Hkv, D], 'float32');
  const q3 = tensor(f32(q), [Tq, Hq, D], 'float32');
  for (const p of ['f32', 'bf16'] as const) {
    withPrecision(p, () => {
      const dec = attentionDecode(q, kc, vc, [Tq]), ref = attention(q3, k, v, { causal: true });
      if (p === 'bf16') assertSame(f32(dec), f32(ref), 'bf16 prefill vs bf16 attention');
      else assert.ok(maxDiff(f32(dec), f32(ref)) < 1e-5, `f32 decode path vs attention: ${maxDiff(f32(dec), f32(ref))}`);
      // With earlier context in the cache the decode kernel keeps it (no bf16 route).
      const ctx = attentionDecode(narrow(q, 1, 8, 32), kc, vc, [Tq]);
      assert.equal(ctx.shape[1], 32);
      for (const x of [dec, ref, ctx]) x.dispose();
    });
  }
  for (const x of [q, kc, vc, k, v, q3]) x.dispose();
});

test('bf16 attention on strided views of a fused QKV projection matches contiguous inputs', { skip }, () => {
  const T = 70, H = 2, D = 72;
  const qkv = randomTensor([T, 3, H, D], 61, 'float32');
  const [q, k, v] = [0, 1, 2].map((i) => select(qkv, 1, i));
  withPrecision('bf16', () => {
    const a = attention(q, k, v);
    const qc = tensor(q.toArray() as number[], [T, H, D], 'float32'), kc = tensor(k.toArray() as number[], [T, H, D], 'float32');
    const vc = tensor(v.toArray() as number[], [T, H, D], 'float32');
    const b = attention(qc, kc, vc);
    assertSame(f32(a), f32(b), 'strided vs contiguous');
    for (const x of [a, b, qc, kc, vc, q, k, v]) x.dispose();
  });
  qkv.dispose();
});

test('attentionForwardBf16 checks its arguments and names itself', { skip }, () => {
  const f = (n: number): Float32Array => new Float32Array(n);
  assert.throws(() => K.attentionForwardBf16(f(10), f(16), f(16), f(16), f(2), new Int32Array([0]), new Int32Array([2]), [2, 1, 1, 8],
    [8, 8, 8, 8, 8, 8], false, 1), /attentionForwardBf16: argument 'q' needs 16 elements but has 10/);
  assert.throws(() => K.attentionForwardBf16(f(16), f(16), f(16), f(8), f(2), new Int32Array([0]), new Int32Array([2]), [2, 1, 1, 8],
    [8, 8, 8, 8, 8, 8], false, 1), /attentionForwardBf16: argument 'out' needs 16 elements but has 8/);
  assert.throws(() => K.attentionForwardBf16(f(16), f(16), f(16), f(16), f(2), new Int32Array([0, 1]), new Int32Array([2, 1]),
    [2, 1, 1, 8], [8, 8, 8, 8, 8, 8], false, 1), /attentionForwardBf16: sequence 1 \(start 1, length 1\) overlaps/);
  assert.throws(() => K.attentionForwardBf16(f(16), f(16), f(16), f(16), f(2), new Int32Array([0]), new Int32Array([2]), [2, 3, 2, 8],
    [8, 8, 8, 8, 8, 8], false, 1), /attentionForwardBf16: invalid dims \[2, ?3, ?2, ?8\]/);
  assert.throws(() => K.attentionForwardBf16(f(16), f(16), f(16), f(16), f(2), new Int32Array([0]), new Int32Array([2]), [2, 1, 1, 8],
    [8, 8, 8, 8, 8, 8], false, -1), /attentionForwardBf16: scale must be positive/);
});
