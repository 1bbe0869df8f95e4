import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as T from '../../src/tensor/index.ts';
import { gradcheck, randomTensor } from '../helpers/gradcheck.ts';

test('groupedLinear equals a per-group linear, skipping empty groups', () => {
  T.tidy(() => {
    const x = randomTensor([7, 5], 1, 'float32');
    const ws = [randomTensor([3, 5], 2, 'float32'), randomTensor([3, 5], 3, 'float32'), randomTensor([3, 5], 4, 'float32')];
    const offsets = [0, 4, 4, 7];
    const y = T.groupedLinear(x, ws, offsets).toArray();
    const ref = [...T.linear(T.narrow(x, 0, 0, 4), ws[0]).toArray(), ...T.linear(T.narrow(x, 0, 4, 3), ws[2]).toArray()];
    const diff = Math.max(...y.map((v, i) => Math.abs(v - ref[i])));
    assert.ok(diff < 1e-6, `max abs diff ${diff}`);
    // bf16 weights (inference) read through the same path
    const yb = T.groupedLinear(x, ws.map((w) => T.cast(w, 'bfloat16')), offsets).toArray();
    assert.ok(Math.max(...yb.map((v, i) => Math.abs(v - ref[i]))) < 0.05);
  });
});

test('groupedLinear gradients match finite differences; empty groups get none', () => {
  const x = randomTensor([6, 4], 5);
  const ws = [randomTensor([3, 4], 6), randomTensor([3, 4], 7), randomTensor([3, 4], 8)];
  gradcheck((a, w0, w1, w2) => T.groupedLinear(a, [w0, w1, w2], [0, 2, 2, 6]), [x, ...ws], { wrt: [0, 1, 3] });
  ws[1].requiresGrad = true;
  const out = T.groupedLinear(x, ws, [0, 2, 2, 6]);
  T.backward(T.sum(out));
  assert.equal(ws[1].grad, null);
  for (const t of [x, ...ws, out]) t.dispose();
});

test('groupedLinear rejects bad offsets and shapes by name', () => {
  T.tidy(() => {
    const x = T.zeros([4, 2]);
    const w = T.zeros([3, 2]);
    assert.throws(() => T.groupedLinear(x, [w, w], [0, 4]), /groupedLinear: 2 offsets for 2 weights/);
    assert.throws(() => T.groupedLinear(x, [w, w], [0, 3, 2]), /offsets must run from 0 to 4 rows/);
    assert.throws(() => T.groupedLinear(x, [w, w], [0, 3, 1, 4].slice(0, 3).concat([4]).slice(1), ), /offsets/);
    assert.throws(() => T.groupedLinear(x, [w, T.zeros([3, 5])], [0, 2, 4]), /weight 1 is \[3,5\], expected \[3, 2\]/);
  });
});

// ---------------------------------------------------------------- native groupedGemm kernel

const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>): number => {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
};

function withSettings<R>(opts: { threads?: number; isa?: 'portable' | 'avx512'; precision?: 'f32' | 'bf16'; impl?: 'native' | 'loop' }, fn: () => R): R {
  const prevThreads = T.numThreads();
  const prevPrecision = T.matmulPrecision();
  const prevImpl = T.setGroupedImpl(opts.impl ?? 'native');
  if (opts.threads) T.setNumThreads(opts.threads);
  if (opts.isa) T.native.setIsa(opts.isa);
  if (opts.precision) T.setMatmulPrecision(opts.precision);
  try {
    return fn();
  } finally {
    T.setGroupedImpl(prevImpl);
    T.setNumThreads(prevThreads);
    T.native.setIsa('avx512');
    T.setMatmulPrecision(prevPrecision);
  }
}

/** Plain JS: y[r] = x[r]·W_eᵀ, or silu(x[r]·G_eᵀ)·(x[r]·U_eᵀ) with ups. */
function reference(x: T.Tensor, gates: T.Tensor[], ups: T.Tensor[] | null, offsets: number[]): number[] {
  const [rows, K] = x.shape, N = gates[0].shape[0];
  const xv = x.toArray();
  const mats = (ws: T.Tensor[]) => ws.map((w) => T.tidy(() => T.cast(w, 'float32').toArray()));
  const gv = mats(gates), uv = ups ? mats(ups) : null;
  const out: number[] = [];
  for (let e = 0; e < gates.length; e++) {
    for (let r = offsets[e]; r < offsets[e + 1]; r++) {
      for (let j = 0; j < N; j++) {
        let g = 0, u = 0;
        for (let k = 0; k < K; k++) {
          g += xv[r * K + k] * gv[e][j * K + k];
          if (uv) u += xv[r * K + k] * uv[e][j * K + k];
        }
        out.push(uv ? (g / (1 + Math.exp(-g))) * u : g);
      }
    }
  }
  assert.equal(out.length, rows * N);
  return out;
}

/** E experts' [N, K] weights, either separate contiguous tensors or views of a Hub-style fused [E, K, 2N] tensor. */
function expertWeights(E: number, N: number, K: number, seed: number, dtype: 'float32' | 'bfloat16', fused: boolean): { gates: T.Tensor[]; ups: T.Tensor[] } {
  if (!fused) {
    const mk = (s: number) => Array.from({ length: E }, (_, e) => T.cast(randomTensor([N, K], s + e, 'float32', 0.5), dtype));
    return { gates: mk(seed), ups: mk(seed + 100) };
  }
  const base = T.cast(randomTensor([E, K, 2 * N], seed, 'float32', 0.5), dtype);
  const view = (e: number, from: number) => T.transpose(T.narrow(T.select(base, 0, e), 1, from, N)); // [N, K], strides [1, 2N]
  return { gates: Array.from({ length: E }, (_, e) => view(e, 0)), ups: Array.from({ length: E }, (_, e) => view(e, N)) };
}

const OFFSET_CASES: number[][] = [
  [0, 1, 1, 2, 3, 3],      // decode-like: one row per expert, empty experts
  [0, 4, 4, 13, 15, 17],   // GEMV groups and a packed-GEMM group (9 rows)
  [0, 0, 0, 0, 0, 6],      // everything in the last expert
];

test('native groupedLinear / groupedSwiGLU match a JS reference: f32 and bf16 weights, both layouts, 1 and 2 threads, both ISAs', () => {
  T.tidy(() => {
    const K = 48, N = 80; // N not a multiple of the 64-column blocks
    for (const dtype of ['float32', 'bfloat16'] as const) {
      for (const fused of [false, true]) {
        const { gates, ups } = expertWeights(5, N, K, 10, dtype, fused);
        for (const offsets of OFFSET_CASES) {
          const x = randomTensor([offsets[5], K], 3, 'float32');
          const refLin = reference(x, gates, null, offsets);
          const refSwi = reference(x, gates, ups, offsets);
          for (const threads of [1, 2]) {
            for (const isa of ['portable', 'avx512'] as const) {
              withSettings({ threads, isa }, () => {
                const what = `${dtype} ${fused ? 'fused views' : 'separate'} offsets [${offsets}] ${threads}t ${isa}`;
                const y = T.groupedLinear(x, gates, offsets).toArray();
                assert.ok(maxDiff(y, refLin) < 1e-4, `groupedLinear ${what}: max abs diff ${maxDiff(y, refLin)}`);
                const s = T.groupedSwiGLU(x, gates, ups, offsets).toArray();
                assert.ok(maxDiff(s, refSwi) < 1e-4, `groupedSwiGLU ${what}: max abs diff ${maxDiff(s, refSwi)}`);
              });
            }
          }
        }
      }
    }
  });
});

test('native grouped kernel: wide weights split into column blocks (partial streaming blocks)', () => {
  T.tidy(() => {
    const K = 40, N = 600; // one active expert: its 600 columns are cut into blocks on 2 threads
    for (const dtype of ['float32', 'bfloat16'] as const) {
      const { gates, ups } = expertWeights(3, N, K, 60, dtype, true);
      for (const offsets of [[0, 0, 2, 2], [0, 1, 3, 4]]) {
        const x = randomTensor([offsets[3], K], 8, 'float32');
        const refLin = reference(x, gates, null, offsets), refSwi = reference(x, gates, ups, offsets);
        for (const threads of [1, 2]) {
          withSettings({ threads }, () => {
            const y = T.groupedLinear(x, gates, offsets).toArray();
            const s = T.groupedSwiGLU(x, gates, ups, offsets).toArray();
            assert.ok(maxDiff(y, refLin) < 1e-4, `${dtype} [${offsets}] ${threads}t linear: max abs diff ${maxDiff(y, refLin)}`);
            assert.ok(maxDiff(s, refSwi) < 1e-4, `${dtype} [${offsets}] ${threads}t swiglu: max abs diff ${maxDiff(s, refSwi)}`);
          });
        }
      }
    }
  });
});

test('native grouped kernel equals the per-expert loop, with and without the bf16 precision switch', () => {
  T.tidy(() => {
    const K = 64, N = 96;
    const offsets = [0, 3, 3, 20, 21, 40];
    const x = randomTensor([40, K], 7, 'float32');
    for (const fused of [true, false]) {
      const { gates, ups } = expertWeights(5, N, K, 40, 'bfloat16', fused);
      for (const precision of ['f32', 'bf16'] as const) {
        const run = (impl: 'native' | 'loop', threads: number, p: 'f32' | 'bf16' = precision) => withSettings({ impl, precision: p, threads }, () => [
          T.groupedLinear(x, gates, offsets).toArray(), T.groupedSwiGLU(x, gates, ups, offsets).toArray(),
        ]);
        const [loopLin, loopSwi] = run('loop', 2);
        const [lin1, swi1] = run('native', 1);
        const what = `${fused ? 'views' : 'contiguous'} ${precision}`;
        for (const threads of [1, 2]) {
          const [lin, swi] = run('native', threads);
          // Each output is computed by one task in a fixed order: bitwise the same on any thread count.
          assert.deepEqual([lin, swi], [lin1, swi1], `${what}: ${threads} threads differ from 1 thread`);
          // Same GEMM kernels per block: only SiLU (shared polynomial) may differ in the last bit.
          assert.ok(maxDiff(lin, loopLin) < 1e-5, `${what} ${threads}t linear: max abs diff ${maxDiff(lin, loopLin)}`);
          assert.ok(maxDiff(swi, loopSwi) < 1e-5, `${what} ${threads}t swiglu: max abs diff ${maxDiff(swi, loopSwi)}`);
        }
        if (precision === 'bf16') { // activations rounded to bf16: close to the f32 reference, not equal
          const ref = reference(x, gates, null, offsets);
          const [f32Lin] = run('loop', 2, 'f32');
          const scale = Math.max(...ref.map(Math.abs));
          assert.ok(maxDiff(loopLin, ref) < 2e-2 * scale, `bf16 switch vs f32 reference: max abs diff ${maxDiff(loopLin, ref)}`);
          assert.ok(maxDiff(loopLin, f32Lin) > 0, 'the bf16 switch changed nothing: the bf16 path did not run');
        }
      }
    }
  });
});

test('groupedSwiGLU gradients (composed path) match finite differences', () => {
  const x = randomTensor([5, 4], 21);
  const gs = [randomTensor([3, 4], 22), randomTensor([3, 4], 23)];
  const us = [randomTensor([3, 4], 24), randomTensor([3, 4], 25)];
  gradcheck((a, g0, g1, u0, u1) => T.groupedSwiGLU(a, [g0, g1], [u0, u1], [0, 2, 5]), [x, ...gs, ...us]);
  for (const t of [x, ...gs, ...us]) t.dispose();
});

test('groupedGemm kernel rejects overruns by name', () => {
  const K = T.native as unknown as { groupedGemm: (...a: unknown[]) => void };
  const x = new Uint8Array(4 * 8), out = new Uint8Array(4 * 8), w = new Uint8Array(4 * 8);
  const desc = new Float64Array([0, 1, 4]);
  // 2 rows x K=4 of x fit; 3 rows do not
  assert.throws(() => K.groupedGemm(x, 0, 4, 4, 2, new Int32Array([0, 3]), [w], desc, 0, out, 0, 2, null, null), /groupedGemm: x \[3, 4\] overruns/);
  // weight [N=4, K=4] needs 16 floats, storage has 8
  assert.throws(() => K.groupedGemm(x, 0, 4, 4, 4, new Int32Array([0, 2]), [w], desc, 0, new Uint8Array(4 * 8), 0, 4, null, null), /groupedGemm: weight 0 \[4, 4\] reaches element 15/);
  assert.throws(() => K.groupedGemm(x, 0, 4, 4, 2, new Int32Array([0, 2, 1]), [w, w], new Float64Array(6), 0, out, 0, 2, null, null), /groupedGemm: offsets decrease at group 1/);
  assert.throws(() => K.groupedGemm(x, 0, 4, 4, 2, new Int32Array([0, 2]), [w, w], desc, 0, out, 0, 2, null, null), /groupedGemm: 2 weight storages for 1 experts/);
  assert.throws(() => T.tidy(() => T.groupedSwiGLU(T.zeros([2, 4]), [T.zeros([3, 4])], [T.zeros([2, 4])], [0, 2])), /groupedSwiGLU: 1 up weights \[2,4\]/);
});
