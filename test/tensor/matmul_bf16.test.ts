// The opt-in bf16-compute GEMM (setMatmulPrecision('bf16')): activations
// rounded to bf16, AVX512-BF16 dot products, f32 accumulation. Checked against
// an f64 reference on the bf16-rounded operands, at block edges, across
// layouts, thread counts, and with the switch off (bit-identical to before).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as T from '../../src/tensor/index.ts';
import { matmul, linear, gemmInto, setMatmulPrecision, matmulPrecision } from '../../src/tensor/ops/matmul.ts';
import { randomTensor } from '../helpers/gradcheck.ts';
import { withPrecision } from '../helpers/settings.ts';

const hasBf16 = T.native.cpu.avx512bf16 && T.native.cpu.level === 'avx512';
// The two bf16 kernels: AMX tiles where the CPU and OS allow them, vdpbf16ps otherwise.
const setKernel = (T.native as unknown as { setBf16GemmKernel: (k: string) => string }).setBf16GemmKernel;
const kernelsToTest: string[] = hasBf16 ? [...new Set([setKernel('avx512bf16'), setKernel('amx')])] : [];
function forEachKernel(fn: (kernel: string) => void): void {
  try {
    for (const k of kernelsToTest) {
      assert.equal(setKernel(k), k);
      fn(k);
    }
  } finally {
    if (hasBf16) setKernel('amx');
  }
}
const f32 = (shape: number[], seed: number) => randomTensor(shape, seed, 'float32');
const roundBf16 = (t: T.Tensor): T.Tensor => T.cast(T.cast(t, 'bfloat16'), 'float32');

/** f64 reference of x[M,K] · w[N,K]ᵀ (+ bias), with its per-element error scale Σ|x||w|. */
function refLinear(x: Float64Array | number[], w: ArrayLike<number>, M: number, N: number, K: number, bias?: ArrayLike<number>) {
  const out = new Float64Array(M * N), mag = new Float64Array(M * N);
  for (let i = 0; i < M; i++)
    for (let j = 0; j < N; j++) {
      let s = 0, m = 0;
      for (let k = 0; k < K; k++) {
        const p = x[i * K + k] * w[j * K + k];
        s += p;
        m += Math.abs(p);
      }
      out[i * N + j] = s + (bias ? bias[j] : 0);
      mag[i * N + j] = m + (bias ? Math.abs(bias[j]) : 0);
    }
  return { out, mag };
}

/** Max over elements of |got - want| / (Σ|x||w| + tiny). */
function relErr(got: ArrayLike<number>, want: Float64Array, mag: Float64Array): number {
  assert.equal(got.length, want.length);
  let e = 0;
  for (let i = 0; i < want.length; i++) e = Math.max(e, Math.abs(got[i] - want[i]) / (mag[i] + 1e-30));
  return e;
}

const shapes: [number, number, number][] = [
  // M, N, K: tiles are 12 rows x 32 columns, depth blocks of 512 K values.
  [5, 3, 1], [5, 32, 7], [12, 33, 16], [13, 31, 17], [25, 100, 513], [37, 129, 1030], [64, 200, 300], [11, 1, 64],
];

test('bf16 GEMM matches an f64 reference on bf16-rounded x, at block edges and odd K', { skip: !hasBf16 && 'no avx512_bf16' }, () => {
  forEachKernel((kernel) => T.tidy(() => {
    for (const [M, N, K] of shapes) {
      const x = f32([M, K], M * 7 + K), wf = f32([N, K], N * 3 + K), bias = f32([N], N + 1);
      const w = T.cast(wf, 'bfloat16');
      const { out, mag } = refLinear(roundBf16(x).toArray(), T.cast(w, 'float32').toArray(), M, N, K, bias.toArray());
      const got = withPrecision('bf16', () => linear(x, w, bias));
      const e = relErr(got.toArray(), out, mag);
      assert.ok(e <= 1e-5, `bf16 linear (${kernel}) ${M}x${N}x${K}: relative error ${e}`);
      // The f32 path does not round x: against this reference it is visibly off,
      // so the check above really exercised the bf16 path.
      if (K >= 16) {
        const ef = relErr(withPrecision('f32', () => linear(x, w, bias)).toArray(), out, mag);
        assert.ok(ef > 1e-4, `f32 path ${M}x${N}x${K} unexpectedly matches the bf16 reference (${ef})`);
      }
    }
  }));
});

test('bf16 GEMM: transposed A, [K,N] bf16 B, batches, beta and 3-D x', { skip: !hasBf16 && 'no avx512_bf16' }, () => {
  forEachKernel((kernel) => T.tidy(() => {
    const M = 19, N = 45, K = 71;
    const wf = f32([N, K], 2), w = T.cast(wf, 'bfloat16'), wr = T.cast(w, 'float32').toArray();
    // x stored transposed ([K, M] viewed as [M, K]); B stored [K, N].
    const xt = f32([K, M], 1), x = T.transpose(xt);
    const xr = roundBf16(T.contiguous(x)).toArray();
    const { out, mag } = refLinear(xr, wr, M, N, K);
    const wkn = T.cast(T.contiguous(T.transpose(wf)), 'bfloat16');
    const got = withPrecision('bf16', () => matmul(x, wkn));
    assert.ok(relErr(got.toArray(), out, mag) <= 1e-5, 'transposed A, [K,N] B');
    // beta: C = x·Wᵀ + 0.5 C.
    const c0 = f32([M, N], 9), c0v = c0.toArray();
    const c = T.contiguous(c0);
    withPrecision('bf16', () => gemmInto(x, false, w, true, c, [], 0.5));
    const wantB = out.map((v, i) => v + 0.5 * c0v[i]);
    const magB = mag.map((v, i) => v + 0.5 * Math.abs(c0v[i]));
    assert.ok(relErr(c.toArray(), wantB, magB) <= 1e-5, 'beta 0.5');
    // Batched x [2, M, K] through linear (folded into rows) and batched matmul (items).
    const x3 = f32([2, M, K], 3), x3r = roundBf16(x3).toArray();
    const ref3 = refLinear(x3r, wr, 2 * M, N, K);
    assert.ok(relErr(withPrecision('bf16', () => linear(x3, w)).toArray(), ref3.out, ref3.mag) <= 1e-5, 'linear 3-D');
    const w3 = T.cast(f32([2, K, N], 4), 'bfloat16'), w3r = T.cast(w3, 'float32').toArray();
    const got3 = withPrecision('bf16', () => matmul(x3, w3)).toArray();
    for (let b = 0; b < 2; b++) {
      const wb = new Float64Array(N * K); // [N, K] from [K, N]
      for (let k = 0; k < K; k++) for (let j = 0; j < N; j++) wb[j * K + k] = w3r[b * K * N + k * N + j];
      const r = refLinear(Array.from(x3r.slice(b * M * K, (b + 1) * M * K)), wb, M, N, K);
      assert.ok(relErr(got3.slice(b * M * N, (b + 1) * M * N), r.out, r.mag) <= 1e-5, `${kernel}: batched matmul item ${b}`);
    }
  }));
});

test('bf16 GEMM: 1 and 2 threads give identical results', { skip: !hasBf16 && 'no avx512_bf16' }, () => {
  forEachKernel((kernel) => T.tidy(() => {
    const threads = T.native.numThreads();
    try {
      for (const [M, N, K] of [[70, 300, 1100], [200, 520, 96], [300, 290, 2101]] as const) {
        const x = f32([M, K], 5), w = T.cast(f32([N, K], 6), 'bfloat16'), bias = f32([N], 7);
        T.setNumThreads(1);
        const one = withPrecision('bf16', () => linear(x, w, bias)).toArray();
        T.setNumThreads(2);
        const two = withPrecision('bf16', () => linear(x, w, bias)).toArray();
        assert.deepEqual(two, one, `${kernel} ${M}x${N}x${K}`);
      }
    } finally {
      T.setNumThreads(threads);
    }
  }));
});

// The AMX kernel reads the weight in place in 32-row panels and 32-value K
// steps, in depth blocks of at most 2048 K values, tasks of <= 256 weight rows x
// <= 256 activation rows: shapes past every one of those edges, with the
// weight strided (ldb > K), odd K (ragged last step) and beta over several
// depth blocks; each kernel against the f64 reference and against the other.
test('bf16 GEMM: depth blocks, panel and task edges, strided and odd-K weights', { skip: !hasBf16 && 'no avx512_bf16' }, () => {
  const cases: [number, number, number, number][] = [
    // M, N, K, extra weight columns (row stride K + extra)
    [300, 290, 2101, 0], [40, 33, 4161, 0], [17, 65, 96, 5], [264, 31, 2080, 3], [5, 520, 33, 0],
  ];
  T.tidy(() => {
    for (const [M, N, K, extra] of cases) {
      const x = f32([M, K], M + K), bias = f32([N], N);
      const wide = T.cast(f32([N, K + extra], N * K), 'bfloat16');
      const w = extra ? T.narrow(wide, 1, extra, K) : wide;
      const { out, mag } = refLinear(roundBf16(x).toArray(), T.cast(T.contiguous(w), 'float32').toArray(), M, N, K, bias.toArray());
      const c0 = f32([M, N], 3), c0v = c0.toArray();
      const wantB = out.map((v, i) => v + 0.25 * c0v[i]), magB = mag.map((v, i) => v + 0.25 * Math.abs(c0v[i]));
      const got: Record<string, number[]> = {};
      forEachKernel((kernel) => {
        got[kernel] = withPrecision('bf16', () => linear(x, w, bias)).toArray();
        const e = relErr(got[kernel], out, mag);
        assert.ok(e <= 1e-5, `${kernel} ${M}x${N}x${K} (ldb ${K + extra}): relative error ${e}`);
        const c = T.tensor(c0v, [M, N]);  // fresh per kernel: gemmInto writes into it
        withPrecision('bf16', () => gemmInto(x, false, w, true, c, [], 0.25, bias));
        const eb = relErr(c.toArray(), wantB, magB);
        assert.ok(eb <= 1e-5, `${kernel} ${M}x${N}x${K} beta 0.25: relative error ${eb}`);
      });
      if (got.amx && got.avx512bf16) {
        const e = relErr(got.amx, Float64Array.from(got.avx512bf16), mag);
        assert.ok(e <= 1e-6, `amx vs avx512bf16 ${M}x${N}x${K}: relative difference ${e}`);
      }
    }
    // [K, N]-stored bf16 B and transposed A: over several depth blocks, and with many rows (several
    // activation chunks).
    for (const [M, N, K] of [[70, 45, 2085], [1100, 37, 100]]) {
      const xt = f32([K, M], 21), x = T.transpose(xt), wkn = T.cast(f32([K, N], 22), 'bfloat16');
      const wr = T.cast(wkn, 'float32').toArray(), wnk = new Float64Array(N * K);
      for (let k = 0; k < K; k++) for (let j = 0; j < N; j++) wnk[j * K + k] = wr[k * N + j];
      const { out, mag } = refLinear(roundBf16(T.contiguous(x)).toArray(), wnk, M, N, K);
      forEachKernel((kernel) => {
        const e = relErr(withPrecision('bf16', () => matmul(x, wkn)).toArray(), out, mag);
        assert.ok(e <= 1e-5, `${kernel} transposed A x [K,N] B ${M}x${N}x${K}: relative error ${e}`);
      });
    }
  });
});

// A [K, N]-stored weight takes its own AMX formulation (weight rows interleaved in pairs as the tile B
// operand); the tiles sum the same K pairs in the same order as the [N, K] path, so the two layouts of
// one weight give identical results: across depth blocks, ragged N and K, strided rows, bias and beta,
// thread counts, and inside the grouped MoE kernel (one expert per task, whole weight rows).
test('bf16 GEMM: a [K, N] weight equals the same weight stored [N, K] (AMX)', { skip: !kernelsToTest.includes('amx') && 'no AMX-BF16' }, () => {
  const threads = T.native.numThreads();
  try {
    T.tidy(() => {
      for (const [M, N, K, extra] of [[5, 45, 71, 0], [70, 45, 2085, 3], [33, 1000, 300, 0], [17, 1536, 2048, 0], [600, 200, 96, 7]]) {
        const x = f32([M, K], M + N), bias = f32([N], 3), c0 = f32([M, N], 4);
        const wide = T.cast(f32([K, N + extra], K), 'bfloat16');
        const wkn = extra ? T.narrow(wide, 1, 0, N) : wide;          // [K, N], row stride N + extra
        const wnk = T.contiguous(T.transpose(wkn));                  // the same values as [N, K]
        for (const t of [1, 2]) {
          T.setNumThreads(t);
          const a = withPrecision('bf16', () => matmul(x, wkn)).toArray();
          const b = withPrecision('bf16', () => linear(x, wnk)).toArray();
          assert.deepEqual(a, b, `${M}x${N}x${K} (ldb ${N + extra}), ${t} thread(s)`);
          const ca = T.tensor(c0.toArray(), [M, N]), cb = T.tensor(c0.toArray(), [M, N]);
          withPrecision('bf16', () => gemmInto(x, false, wkn, false, ca, [], 0.5, bias));
          withPrecision('bf16', () => gemmInto(x, false, wnk, true, cb, [], 0.5, bias));
          assert.deepEqual(ca.toArray(), cb.toArray(), `${M}x${N}x${K} with bias and beta, ${t} thread(s)`);
        }
      }
      // Experts as views of a Hub [E, in, 2*out] tensor (gate and up side by side) against contiguous copies.
      const E = 3, H = 96, I = 80, offsets = [0, 37, 37, 90];
      const gu = T.cast(f32([E, H, 2 * I], 11), 'bfloat16'), dn = T.cast(f32([E, I, H], 12), 'bfloat16');
      const expert = (e: number) => T.select(gu, 0, e);
      const gates = [0, 1, 2].map((e) => T.transpose(T.narrow(expert(e), 1, 0, I)));
      const ups = [0, 1, 2].map((e) => T.transpose(T.narrow(expert(e), 1, I, I)));
      const downs = [0, 1, 2].map((e) => T.transpose(T.select(dn, 0, e)));
      const x = f32([offsets[E], H], 13);
      for (const t of [1, 2]) {
        T.setNumThreads(t);
        const run = (g: T.Tensor[], u: T.Tensor[], d: T.Tensor[]) =>
          withPrecision('bf16', () => T.groupedLinear(T.groupedSwiGLU(x, g, u, offsets), d, offsets)).toArray();
        const views = run(gates, ups, downs);
        const copies = run(gates.map((w) => T.contiguous(w)), ups.map((w) => T.contiguous(w)), downs.map((w) => T.contiguous(w)));
        assert.deepEqual(views, copies, `grouped experts, ${t} thread(s)`);
      }
    });
  } finally {
    T.setNumThreads(threads);
  }
});

test('bf16 GEMM: special values', { skip: !hasBf16 && 'no avx512_bf16' }, () => {
  // Inf and NaN in x reach exactly the outputs they touch; a NaN in the weight
  // row after the last one used (odd K, in-place reads) must not leak in.
  forEachKernel((kernel) => T.tidy(() => {
    const M = 20, N = 33, K = 35;
    const xv = f32([M, K], 31).toArray();
    xv[3 * K + 4] = Infinity;
    xv[7 * K + 34] = NaN;
    const x = T.tensor(xv, [M, K]);
    const wv = T.cast(f32([N + 1, K], 32), 'float32').toArray();
    for (let k = 0; k < K; k++) wv[N * K + k] = NaN;  // row N: outside the [N, K] view
    const w = T.narrow(T.cast(T.tensor(wv, [N + 1, K]), 'bfloat16'), 0, 0, N);
    const got = withPrecision('bf16', () => linear(x, w)).toArray();
    for (let i = 0; i < M; i++)
      for (let j = 0; j < N; j++) {
        const v = got[i * N + j];
        if (i === 3) assert.ok(!Number.isFinite(v), `${kernel}: row 3 col ${j} should be Inf/NaN, got ${v}`);
        else if (i === 7) assert.ok(Number.isNaN(v), `${kernel}: row 7 col ${j} should be NaN, got ${v}`);
        else assert.ok(Number.isFinite(v), `${kernel}: [${i},${j}] = ${v}`);
      }
  }));
});

test('the bf16 kernels in use', () => {
  // Documents which kernels this run covered (AMX only where CPU and OS allow it).
  if (hasBf16) assert.ok(kernelsToTest.includes('avx512bf16'), `kernels: ${kernelsToTest}`);
  else assert.deepEqual(kernelsToTest, []);
});

test('switch off (default) gives the same results as before; bad names throw', () => {
  assert.equal(matmulPrecision(), process.env.SEEDVL_MATMUL_PRECISION === 'bf16' ? 'bf16' : 'f32');
  T.tidy(() => {
    const x = f32([37, 300], 11), w = T.cast(f32([129, 300], 12), 'bfloat16'), bias = f32([129], 13);
    const before = withPrecision('f32', () => linear(x, w, bias)).toArray();
    withPrecision('bf16', () => linear(x, w, bias)); // toggling on and off leaves no state behind
    const after = withPrecision('f32', () => linear(x, w, bias)).toArray();
    assert.deepEqual(after, before);
    // f32 weights never take the bf16 path.
    const wf = T.cast(w, 'float32');
    assert.deepEqual(withPrecision('bf16', () => linear(x, wf, bias)).toArray(), withPrecision('f32', () => linear(x, wf, bias)).toArray());
  });
  assert.throws(() => setMatmulPrecision('fp16' as 'f32'), /setMatmulPrecision: expected 'f32' or 'bf16', got 'fp16'/);
  const raw = (T.native as unknown as { setMatmulPrecision: (p: unknown) => string }).setMatmulPrecision;
  assert.throws(() => raw('half'), /setMatmulPrecision: expected 'f32' or 'bf16', got 'half'/);
  assert.throws(() => setKernel('tpu'), /setBf16GemmKernel: expected 'amx' or 'avx512bf16', got 'tpu'/);
  assert.equal(matmulPrecision(), process.env.SEEDVL_MATMUL_PRECISION === 'bf16' ? 'bf16' : 'f32');
});
