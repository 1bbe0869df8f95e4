import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as T from '../../src/tensor/index.ts';
import { matmul, linear } from '../../src/tensor/ops/matmul.ts';
import { gradcheck, randomTensor, randomArray } from '../helpers/gradcheck.ts';

type Mat = { data: number[]; shape: number[] };

/** Plain JS batched matmul with numpy broadcasting, in float64. */
function refMatmul(a: Mat, b: Mat): Mat {
  const [M, K] = a.shape.slice(-2), N = b.shape[b.shape.length - 1];
  const ab = a.shape.slice(0, -2), bb = b.shape.slice(0, -2);
  const n = Math.max(ab.length, bb.length);
  const pad = (s: number[]) => [...Array(n - s.length).fill(1), ...s];
  const pa = pad(ab), pb = pad(bb);
  const batch = pa.map((d, i) => Math.max(d, pb[i]));
  const count = batch.reduce((p, d) => p * d, 1);
  const out: number[] = new Array(count * M * N).fill(0);
  for (let t = 0; t < count; t++) {
    let rem = t, ia = 0, ib = 0, sa = 1, sb = 1;
    for (let d = n - 1; d >= 0; d--) {
      const idx = rem % batch[d];
      rem = Math.floor(rem / batch[d]);
      ia += (pa[d] === 1 ? 0 : idx) * sa;
      ib += (pb[d] === 1 ? 0 : idx) * sb;
      sa *= pa[d];
      sb *= pb[d];
    }
    for (let i = 0; i < M; i++)
      for (let j = 0; j < N; j++) {
        let s = 0;
        for (let k = 0; k < K; k++) s += a.data[ia * M * K + i * K + k] * b.data[ib * K * N + k * N + j];
        out[t * M * N + i * N + j] = s;
      }
  }
  return { data: out, shape: [...batch, M, N] };
}

const matOf = (t: T.Tensor): Mat => ({ data: t.toArray(), shape: [...t.shape] });

function maxAbsDiff(x: ArrayLike<number>, y: ArrayLike<number>): number {
  assert.equal(x.length, y.length, 'length mismatch');
  let m = 0;
  for (let i = 0; i < x.length; i++) m = Math.max(m, Math.abs(x[i] - y[i]));
  return m;
}

function assertClose(got: T.Tensor, want: Mat, tol: number, what: string): void {
  assert.deepEqual([...got.shape], want.shape, `${what}: shape`);
  const d = maxAbsDiff(got.toArray(), want.data);
  assert.ok(d <= tol, `${what}: max abs diff ${d} > ${tol}`);
}

const f32 = (shape: number[], seed: number) => randomTensor(shape, seed, 'float32');

test('matmul matches a JS reference across block edges, GEMV shapes and both dtypes', () => {
  T.tidy(() => {
    const shapes: [number, number, number][] = [
      [1, 1, 1], [3, 5, 7], [14, 32, 16], [15, 33, 17], [29, 70, 300], [47, 129, 600],
      [1, 300, 200], [2, 100, 77], [4, 64, 33], [5, 64, 33], [100, 3, 50], [64, 1, 17], [3, 4, 5],
    ];
    let seed = 1;
    for (const [M, N, K] of shapes) {
      for (const dtype of ['float32', 'float64'] as const) {
        const a = randomTensor([M, K], seed++, dtype), b = randomTensor([K, N], seed++, dtype);
        const tol = dtype === 'float32' ? 2e-6 * K : 1e-12 * K;
        assertClose(matmul(a, b), refMatmul(matOf(a), matOf(b)), tol, `${dtype} ${M}x${N}x${K}`);
      }
    }
  });
});

test('matmul reads transposed, narrowed and expanded views without mistakes', () => {
  T.tidy(() => {
    const M = 37, K = 45, N = 51;
    const at = f32([K, M], 11), bt = f32([N, K], 12);
    const a = T.transpose(at), b = T.transpose(bt); // column-major views
    const want = refMatmul(matOf(a), matOf(b));
    assertClose(matmul(a, b), want, 1e-4, 'A^T B^T views');
    assertClose(matmul(T.contiguous(a), b), want, 1e-4, 'A B^T');
    assertClose(matmul(a, T.contiguous(b)), want, 1e-4, 'A^T B');
    // A window of a wider matrix: rows with a leading dimension larger than K.
    const wide = f32([M + 3, K + 9], 13);
    const win = T.narrow(T.narrow(wide, 1, 4, K), 0, 2, M);
    const bc = f32([K, N], 14);
    assertClose(matmul(win, bc), refMatmul(matOf(win), matOf(bc)), 1e-4, 'narrowed A');
    // A row broadcast to M rows (row stride 0) and a permuted batch.
    const row = T.expand(f32([1, K], 15), [M, K]);
    assertClose(matmul(row, bc), refMatmul(matOf(row), matOf(bc)), 1e-4, 'stride-0 rows');
    const x = T.permute(f32([5, 3, 7], 16), [1, 0, 2]); // [3,5,7], batch stride not outermost
    const y = f32([3, 7, 6], 17);
    assertClose(matmul(x, y), refMatmul(matOf(x), matOf(y)), 1e-5, 'permuted batch');
    // Thin products on the GEMV paths: transposed A with 3 columns, bf16 B stored [K, N].
    const at3 = T.transpose(f32([K, M], 19)), b3 = f32([K, 3], 20);
    assertClose(matmul(at3, b3), refMatmul(matOf(at3), matOf(b3)), 1e-5, 'A^T with N=3');
    const x2 = f32([2, K], 21), wkn = T.cast(f32([K, N], 22), 'bfloat16');
    assertClose(matmul(x2, wkn), refMatmul(matOf(x2), matOf(T.cast(wkn, 'float32'))), 1e-5, 'bf16 [K,N] GEMV');
    const x9 = f32([9, K], 23);
    assertClose(matmul(x9, wkn), refMatmul(matOf(x9), matOf(T.cast(wkn, 'float32'))), 1e-5, 'bf16 [K,N] GEMM');
    // A layout the kernel cannot read (strided last dim) is copied.
    const odd = T.narrow(T.reshape(f32([M, 2 * K], 18), [M, K, 2]), 2, 0, 1);
    const oddA = T.squeeze(odd, 2);
    assertClose(matmul(oddA, bc), refMatmul(matOf(oddA), matOf(bc)), 1e-4, 'strided columns');
  });
});

test('matmul broadcasts batch dims like numpy', () => {
  T.tidy(() => {
    const cases: [number[], number[]][] = [
      [[2, 1, 6, 5], [3, 5, 4]],
      [[4, 6, 5], [5, 4]],
      [[6, 5], [2, 5, 3]],
      [[2, 3, 1, 5], [1, 3, 5, 2]],
      [[3, 2, 5], [3, 5, 7]],
    ];
    let seed = 30;
    for (const [sa, sb] of cases) {
      const a = f32(sa, seed++), b = f32(sb, seed++);
      assertClose(matmul(a, b), refMatmul(matOf(a), matOf(b)), 1e-5, `[${sa}] @ [${sb}]`);
    }
  });
});

test('float32 gradients sum over broadcast batch dims (reductions in the kernel)', () => {
  T.tidy(() => {
    const a = f32([5, 1, 30, 7], 1), b = f32([6, 7, 20], 2);
    a.requiresGrad = true;
    b.requiresGrad = true;
    const g = f32([5, 6, 30, 20], 3);
    T.backward(matmul(a, b), { grad: g });
    // Full-batch products, then sums over the dims each operand was broadcast along.
    const full = (x: Mat, y: Mat) => refMatmul(x, y);
    const bt = matOf(T.contiguous(T.transpose(b))); // [6, 20, 7]
    const gaFull = full(matOf(g), bt); // [5, 6, 30, 7]
    const ga = new Array(5 * 30 * 7).fill(0);
    gaFull.data.forEach((v, i) => {
      const m = i % (30 * 7), bi = Math.floor(i / (6 * 30 * 7));
      ga[bi * 30 * 7 + m] += v;
    });
    assertClose(a.grad!, { data: ga, shape: [5, 1, 30, 7] }, 1e-4, 'dA over broadcast dim');
    const at = matOf(T.contiguous(T.transpose(T.expand(a, [5, 6, 30, 7])))); // [5, 6, 7, 30]
    const gbFull = full(at, matOf(g)); // [5, 6, 7, 20]
    const gb = new Array(6 * 7 * 20).fill(0);
    gbFull.data.forEach((v, i) => (gb[i % (6 * 7 * 20)] += v));
    assertClose(b.grad!, { data: gb, shape: [6, 7, 20] }, 1e-4, 'dB over missing leading dim');
    a.grad!.dispose();
    b.grad!.dispose();
  });
});

test('large problems: packed-A rounds, deep K and several column groups', () => {
  T.tidy(() => {
    // 2100 x 2048 floats of A exceed one packing round; K = 9000 exceeds one depth super-block.
    for (const [M, N, K] of [[2100, 40, 2048], [20, 300, 9000]] as const) {
      const a = f32([M, K], M), b = f32([K, N], N);
      assertClose(matmul(a, b), refMatmul(matOf(a), matOf(b)), 3e-4, `${M}x${N}x${K}`);
    }
  });
});

test('linear: x·Wᵀ + b for float32 and bfloat16 weights, GEMV and GEMM shapes', () => {
  T.tidy(() => {
    for (const rows of [1, 3, 4, 5, 40]) {
      const inF = 67, outF = 45;
      const x = f32([rows, inF], rows), w = f32([outF, inF], 100 + rows), bias = f32([outF], 200 + rows);
      const ref = refMatmul(matOf(x), matOf(T.contiguous(T.transpose(w))));
      const bd = bias.toArray();
      ref.data = ref.data.map((v, i) => v + bd[i % outF]);
      assertClose(linear(x, w, bias), ref, 1e-5, `f32 linear rows=${rows}`);
      // bf16 weights: the reference uses the bf16-rounded weights exactly.
      const wb = T.cast(w, 'bfloat16');
      const refb = refMatmul(matOf(x), matOf(T.contiguous(T.transpose(T.cast(wb, 'float32')))));
      refb.data = refb.data.map((v, i) => v + bd[i % outF]);
      assertClose(linear(x, wb, bias), refb, 2e-5, `bf16 linear rows=${rows}`);
    }
    // Few outputs (N <= 4): the transposed GEMV path adds the bias per x row.
    const xs = f32([40, 67], 50), wn = f32([3, 67], 51), bn = f32([3], 52);
    const refn = refMatmul(matOf(xs), matOf(T.contiguous(T.transpose(wn))));
    const bnd = bn.toArray();
    refn.data = refn.data.map((v, i) => v + bnd[i % 3]);
    assertClose(linear(xs, wn, bn), refn, 1e-5, 'f32 linear N=3');
    // Leading batch dims and a 1-D input.
    const x3 = f32([2, 3, 8], 7), w = f32([5, 8], 8);
    const flat = refMatmul({ data: x3.toArray(), shape: [6, 8] }, matOf(T.contiguous(T.transpose(w))));
    assertClose(linear(x3, w), { data: flat.data, shape: [2, 3, 5] }, 1e-5, '3-D x');
    const x1 = f32([8], 9);
    const r1 = refMatmul({ data: x1.toArray(), shape: [1, 8] }, matOf(T.contiguous(T.transpose(w))));
    assertClose(linear(x1, w), { data: r1.data, shape: [5] }, 1e-5, '1-D x');
  });
});

test('bf16 decode GEMV keeps float32-level accuracy on long rows', () => {
  T.tidy(() => {
    const K = 4096, N = 64;
    const x = f32([1, K], 1), w = T.cast(f32([N, K], 2), 'bfloat16');
    const ref = refMatmul(matOf(x), matOf(T.contiguous(T.transpose(T.cast(w, 'float32')))));
    // A bf16-rounded x would be off by ~1e-2 here; the hi/lo split keeps ~1e-5.
    assertClose(linear(x, w), ref, 2e-4, 'bf16 GEMV K=4096');
  });
});

test('gradients of matmul and linear (float64 gradcheck)', () => {
  gradcheck((a, b) => matmul(a, b), [randomTensor([3, 4], 1), randomTensor([4, 5], 2)]);
  gradcheck((a, b) => matmul(a, b), [randomTensor([2, 1, 3, 4], 3), randomTensor([3, 4, 2], 4)]);
  gradcheck((a, b) => matmul(T.transpose(a), b), [randomTensor([4, 3], 5), randomTensor([2, 4, 5], 6)]);
  gradcheck((a, b) => matmul(a, b), [randomTensor([1, 6], 7), randomTensor([6, 3], 8)]);
  gradcheck((x, w, b) => linear(x, w, b), [randomTensor([2, 3, 4], 9), randomTensor([5, 4], 10), randomTensor([5], 11)]);
  gradcheck((x, w) => linear(x, w), [randomTensor([4], 12), randomTensor([3, 4], 13)]);
  gradcheck((x, w, b) => linear(T.transpose(x, 0, 1), w, b), [randomTensor([3, 2, 4], 14), randomTensor([5, 4], 15), randomTensor([5], 16)]);
});

test('bfloat16 weights get no gradient; float32 input still does', () => {
  T.tidy(() => {
    const x = f32([3, 4], 1);
    x.requiresGrad = true;
    const w = T.cast(f32([2, 4], 2), 'bfloat16');
    const y = linear(x, w);
    T.backward(y, { grad: T.ones([3, 2]) });
    assert.ok(x.grad, 'x has a gradient');
    assert.equal(w.grad, null);
    const want = refMatmul(matOf(T.ones([3, 2])), matOf(T.cast(w, 'float32')));
    assertClose(x.grad!, want, 1e-6, 'dx');
    x.grad!.dispose();
  });
});

test('only inputs that require grad get gradients', () => {
  T.tidy(() => {
    const x = f32([3, 4], 1), w = f32([2, 4], 2), b = f32([2], 3);
    w.requiresGrad = true;
    T.backward(linear(x, w, b), { grad: T.ones([3, 2]) });
    assert.equal(x.grad, null);
    assert.equal(b.grad, null);
    assertClose(w.grad!, refMatmul(matOf(T.transpose(T.ones([3, 2]))), matOf(x)), 1e-6, 'dW');
    w.grad!.dispose();
    const a = f32([3, 4], 4), c = f32([4, 2], 5);
    c.requiresGrad = true;
    T.backward(matmul(a, c), { grad: T.ones([3, 2]) });
    assert.equal(a.grad, null);
    assertClose(c.grad!, refMatmul(matOf(T.transpose(a)), matOf(T.ones([3, 2]))), 1e-6, 'dB');
    c.grad!.dispose();
  });
});

test('results do not depend on the thread count (bitwise)', () => {
  T.tidy(() => {
    const threads = T.numThreads();
    const cases: [number[], number[]][] = [[[300, 260], [260, 190]], [[2, 1000], [1000, 700]], [[3, 200, 70], [70, 50]]];
    try {
      for (const [sa, sb] of cases) {
        const a = f32(sa, 1), b = f32(sb, 2);
        T.setNumThreads(1);
        const one = matmul(a, b).toArray();
        T.setNumThreads(2);
        const two = matmul(a, b).toArray();
        assert.equal(maxAbsDiff(one, two), 0, `[${sa}] @ [${sb}]`);
        const w = T.cast(T.transpose(b), 'bfloat16');
        T.setNumThreads(1);
        const l1 = linear(a, T.contiguous(w)).toArray();
        T.setNumThreads(2);
        const l2 = linear(a, T.contiguous(w)).toArray();
        assert.equal(maxAbsDiff(l1, l2), 0, `bf16 linear [${sa}]`);
      }
    } finally {
      T.setNumThreads(threads);
    }
  });
});

test('portable, AVX2 and AVX-512 paths agree', () => {
  T.tidy(() => {
    const level = T.native.cpu.level as 'portable' | 'avx2' | 'avx512';
    const paths = (['portable', 'avx2', 'avx512'] as const).filter((p) => p === 'portable' || (p === 'avx2' ? T.native.cpu.avx2 : level === 'avx512'));
    const a = f32([70, 300], 3), b = f32([300, 90], 4), x = f32([3, 300], 5);
    const wb = T.cast(f32([90, 300], 6), 'bfloat16');
    try {
      const results = paths.map((p) => {
        T.native.setIsa(p);
        return [matmul(a, b).toArray(), linear(a, wb).toArray(), linear(x, wb).toArray(), matmul(x, b).toArray()];
      });
      for (let i = 1; i < results.length; i++)
        results[i].forEach((r, k) => {
          const d = maxAbsDiff(r, results[0][k]);
          assert.ok(d < 1e-4, `${paths[i]} vs portable, case ${k}: max abs diff ${d}`);
        });
    } finally {
      T.native.setIsa(level);
    }
  });
});

test('bf16 GEMV: the vdpbf16ps path matches the shift-and-FMA path', () => {
  T.tidy(() => {
    const hook = (T.native as unknown as { gemvUseDpbf16(on: boolean): boolean }).gemvUseDpbf16;
    const x = f32([3, 1000], 1), w = T.cast(f32([70, 1000], 2), 'bfloat16');
    try {
      const usesDp = hook(true);
      const a = linear(x, w).toArray();
      hook(false);
      const b = linear(x, w).toArray();
      const d = maxAbsDiff(a, b);
      assert.ok(d < 1e-4, `dpbf16 ${usesDp ? 'on' : 'unavailable'} vs off: max abs diff ${d}`);
    } finally {
      hook(true);
    }
  });
});

test('empty and zero-depth products', () => {
  T.tidy(() => {
    assert.deepEqual(matmul(T.zeros([3, 0]), T.zeros([0, 2])).toArray(), [0, 0, 0, 0, 0, 0]);
    assert.deepEqual(matmul(T.zeros([0, 4]), T.zeros([4, 2])).shape, [0, 2]);
    assert.deepEqual(matmul(T.zeros([2, 0, 3, 4]), T.zeros([4, 2])).shape, [2, 0, 3, 2]);
    assert.deepEqual(linear(T.zeros([2, 0]), T.zeros([3, 0]), T.tensor([1, 2, 3])).toArray(), [1, 2, 3, 1, 2, 3]);
  });
});

test('bad inputs throw errors that name the op, shapes and dtypes', () => {
  T.tidy(() => {
    assert.throws(() => matmul(T.zeros([3]), T.zeros([3, 2])), /matmul: .*\[3\] \(float32\) @ \[3,2\] \(float32\).*1-D/);
    assert.throws(() => matmul(T.zeros([2, 3]), T.zeros([4, 2])), /matmul: inner dims differ: \[2,3\] \(float32\) @ \[4,2\] \(float32\)/);
    assert.throws(() => matmul(T.zeros([2, 2, 3]), T.zeros([3, 3, 2])), /matmul: batch dims \[2\] and \[3\] do not broadcast/);
    assert.throws(() => matmul(T.zeros([2, 3]), T.zeros([3, 2], 'float64')), /matmul: unsupported dtypes \[2,3\] \(float32\) and \[3,2\] \(float64\)/);
    assert.throws(() => matmul(T.zeros([2, 3], 'int32'), T.zeros([3, 2], 'int32')), /matmul: unsupported dtypes/);
    assert.throws(() => linear(T.zeros([2, 3]), T.zeros([4, 5])), /linear: x \[2,3\] \(float32\) has 3 features, weight \[4,5\] \(float32\) expects 5/);
    assert.throws(() => linear(T.zeros([2, 3]), T.zeros([4, 3]), T.zeros([3])), /linear: bias must be \[4\] float32, got \[3\] \(float32\)/);
    assert.throws(() => linear(T.zeros([2, 3]), T.zeros([3])), /linear: expected x \[\.\.\., in\] and weight \[out, in\]/);
  });
});

test('the gemm kernel checks every extent before touching memory', () => {
  const gemm = (T.native as unknown as { gemm: (...args: unknown[]) => void }).gemm;
  const a = new Uint8Array(new Float32Array(6).buffer), b = new Uint8Array(new Float32Array(6).buffer);
  const c = new Uint8Array(new Float32Array(4).buffer);
  const desc = (M: number, N: number, K: number, lda: number, ldb: number, ldc: number, batch: number[] = []) =>
    new Float64Array([M, N, K, 0, 0, lda, ldb, ldc, batch.length / 4, ...batch]);
  gemm(0, a, 0, b, 0, 0, c, 0, desc(2, 2, 3, 3, 2, 2), 1, 0, null, 0); // fits exactly
  assert.throws(() => gemm(0, a, 1, b, 0, 0, c, 0, desc(2, 2, 3, 3, 2, 2), 1, 0, null, 0), /gemm: operand A reaches element 6 beyond its storage of 6/);
  assert.throws(() => gemm(0, a, 0, b, 0, 0, c, 0, desc(2, 2, 3, 3, 3, 2), 1, 0, null, 0), /gemm: operand B reaches/);
  assert.throws(() => gemm(0, a, 0, b, 0, 0, c, 0, desc(2, 2, 3, 3, 2, 2, [2, 0, 0, 4]), 1, 0, null, 0), /gemm: operand C reaches/);
  assert.throws(() => gemm(0, a, 0, b, 0, 0, c, 0, desc(2, 2, 3, 3, 2, 1), 1, 0, null, 0), /gemm: ldc 1 < N 2/);
  assert.throws(() => gemm(0, a, 0, b, 0, 0, c, 0, desc(2, 2, 3, 3, 2, 2), 1, 0, new Uint8Array(4), 0), /gemm: operand bias reaches/);
  assert.throws(() => gemm(1, a, 0, b, 0, 2, c, 0, desc(1, 1, 1, 1, 1, 1), 1, 0, null, 0), /gemm: B of type bfloat16 is not supported with float64/);
});
