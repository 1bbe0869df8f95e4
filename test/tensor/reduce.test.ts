import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as T from '../../src/tensor/index.ts';
import { assertClose } from '../helpers/compare.ts';
import * as R from '../../src/tensor/ops/reduce.ts';
import * as E from '../../src/tensor/ops/elementwise.ts';
import { gradcheck, randomTensor } from '../helpers/gradcheck.ts';

/** Plain-JS reduction of x over dims with a fold over each slice's values (in index order). */
function refReduce(x: T.Tensor, dims: number[] | undefined, fold: (vals: number[]) => number, keepdim = false): { shape: number[]; data: number[] } {
  const nd = x.ndim;
  const red = (dims ?? x.shape.map((_, i) => i)).map((d) => (d < 0 ? d + nd : d));
  const vals = x.toArray();
  const outShape = x.shape.map((s, i) => (red.includes(i) ? 1 : s));
  const outN = outShape.reduce((p, s) => p * s, 1);
  const groups: number[][] = Array.from({ length: outN }, () => []);
  for (let i = 0; i < vals.length; i++) {
    let r = i, o = 0, mul = 1;
    for (let d = nd - 1; d >= 0; d--) {
      const c = r % x.shape[d];
      r = Math.floor(r / x.shape[d]);
      if (!red.includes(d)) o += c * mul;
      mul *= outShape[d];
    }
    groups[o].push(vals[i]);
  }
  return { shape: keepdim ? outShape : x.shape.filter((_, i) => !red.includes(i)), data: groups.map(fold) };
}
const fsum = (v: number[]): number => v.reduce((a, b) => a + b, 0);
const fmean = (v: number[]): number => fsum(v) / v.length;
const fmax = (v: number[]): number => v.reduce((a, b) => (Number.isNaN(a) || b > a ? b : a), -Infinity);
const flse = (v: number[]): number => {
  const m = fmax(v);
  return !Number.isFinite(m) ? m : m + Math.log(v.reduce((s, x) => s + Math.exp(x - m), 0));
};

const CASES: (number[] | undefined)[] = [[0], [1], [2], [-1], [0, 1], [1, 2], [0, 2], [0, 1, 2], undefined, []];

test('sum, mean, max, logsumexp over single, adjacent, non-adjacent and all dims (keepdim both ways)', () => {
  T.tidy(() => {
    const x = randomTensor([3, 4, 5], 1, 'float32', 3);
    const xt = T.permute(randomTensor([5, 3, 4], 2, 'float32', 3), [1, 2, 0]); // strided [3, 4, 5]
    const ops: [string, (t: T.Tensor, d: number[] | undefined, k: boolean) => T.Tensor, (v: number[]) => number][] = [
      ['sum', R.sum, fsum], ['mean', R.mean, fmean], ['max', R.max, fmax], ['logsumexp', R.logsumexp, flse],
    ];
    for (const [name, f, fold] of ops) {
      for (const input of [x, xt]) {
        for (const dims of CASES) {
          for (const keepdim of [false, true]) {
            const what = `${name} dims ${JSON.stringify(dims)} keepdim ${keepdim}${input === xt ? ' (strided)' : ''}`;
            const out = f(input, dims, keepdim);
            const ref = refReduce(input, dims, fold, keepdim);
            assert.deepEqual(out.shape, ref.shape, `${what}: shape`);
            assertClose(out.toArray(), ref.data, 1e-5, 1e-5, what);
          }
        }
      }
    }
    // size-1 dims between reduced dims keep the in-place path; results stay right
    const y = randomTensor([2, 1, 3, 1, 4], 3, 'float32');
    for (const dims of [[0, 2], [2, 4], [0, 2, 4], [1, 3]]) {
      assertClose(R.sum(y, dims).toArray(), refReduce(y, dims, fsum).data, 1e-5, 1e-5, `sum ${dims} with size-1 dims`);
    }
  });
});

test('max and argmax: first occurrence on ties, NaN propagates; logsumexp handles infinities', () => {
  T.tidy(() => {
    const x = T.tensor([1, 3, 3, 2, 5, 5, -1, 0], [2, 4]);
    assert.deepEqual(R.argmax(x, 1).toArray(), [1, 0]);
    assert.deepEqual(R.argmax(x, 0).toArray(), [1, 1, 0, 0]);
    assert.deepEqual(R.argmax(x).toArray(), [4]);
    assert.deepEqual(R.argmax(x, 1, true).shape, [2, 1]);
    assert.ok(Number.isNaN(R.max(T.tensor([1, NaN, 3])).item()));
    assert.deepEqual(R.argmax(T.tensor([1, NaN, 3, NaN])).toArray(), [1]);
    assert.deepEqual(R.max(T.tensor([1, 2, NaN, 0], [2, 2]), 0).toArray().map(Number.isNaN), [true, false]);
    assert.deepEqual(R.logsumexp(T.tensor([-Infinity, -Infinity, 0, -Infinity], [2, 2]), 1).toArray(), [-Infinity, 0]);
    assert.equal(R.logsumexp(T.tensor([Infinity, 1])).item(), Infinity);
    assertClose(R.logsumexp(T.tensor([1000, 1000])).toArray(), [1000 + Math.log(2)], 0, 1e-6, 'logsumexp large');
    // the middle-dim (composite) path too
    assert.deepEqual(R.logsumexp(T.tensor([-Infinity, 0, -Infinity, -Infinity], [1, 2, 2]), 1).toArray(), [-Infinity, 0]);
  });
});

test('empty tensors: sums are 0, mean NaN, logsumexp -inf, max throws', () => {
  T.tidy(() => {
    const e = T.zeros([3, 0, 2]);
    assert.deepEqual(R.sum(e, 1).toArray(), [0, 0, 0, 0, 0, 0]);
    assert.deepEqual(R.sum(e, [0, 1]).toArray(), [0, 0]);
    assert.deepEqual(R.sum(e, [0, 2]).shape, [0]);
    assert.ok(R.mean(e, 1).toArray().every(Number.isNaN));
    assert.deepEqual(R.logsumexp(e, 1).toArray(), new Array(6).fill(-Infinity));
    assert.deepEqual(R.sum(T.zeros([0])).toArray(), [0]);
    assert.throws(() => R.max(e, 1), /max: cannot reduce over an empty dimension/);
    assert.deepEqual(R.max(e, 2).shape, [3, 0]);
  });
});

test('sumTo reduces broadcast dims and checks shapes', () => {
  T.tidy(() => {
    const g = randomTensor([2, 3, 4], 4, 'float32');
    assertClose(R.sumTo(g, [3, 1]).toArray(), refReduce(g, [0, 2], fsum).data, 1e-6, 1e-5, 'sumTo [3,1]');
    assertClose(R.sumTo(g, [1, 4]).toArray(), refReduce(g, [0, 1], fsum).data, 1e-6, 1e-5, 'sumTo [1,4]');
    assertClose(R.sumTo(g, [4]).toArray(), refReduce(g, [0, 1], fsum).data, 1e-6, 1e-5, 'sumTo [4]');
    assertClose(R.sumTo(g, []).toArray(), [fsum(g.toArray())], 1e-5, 1e-5, 'sumTo []');
    assert.deepEqual(R.sumTo(g, [2, 3, 4]).toArray(), g.toArray());
    assert.throws(() => R.sumTo(g, [5]), /sumTo: \[2,3,4\] does not broadcast from \[5\]/);
    assert.throws(() => R.sumTo(g, [1, 2, 3, 4, 1]), /sumTo/);
  });
});

test('reduction gradients match finite differences', () => {
  T.tidy(() => {
    const x = randomTensor([3, 4, 5], 5, 'float64', 2);
    for (const dims of [[0], [1], [2], [0, 2], [1, 2], undefined]) {
      gradcheck((t) => R.sum(t, dims), [x], { maxProbes: 20 });
      gradcheck((t) => R.mean(t, dims, true), [x], { maxProbes: 20 });
      gradcheck((t) => R.max(t, dims), [x], { maxProbes: 20 });
      gradcheck((t) => R.logsumexp(t, dims), [x], { maxProbes: 20 });
    }
    gradcheck((t) => R.sumTo(t, [4, 1]), [x]);
    gradcheck((t) => R.sum(T.transpose(t, 0, 2), [1]), [x], { maxProbes: 20 });
  });
});

test('large reductions: thread-count invariant and accurate (row-blocked and column paths)', () => {
  const prev = T.numThreads();
  try {
    T.tidy(() => {
      const long = randomTensor([2, 100_000], 6, 'float32');
      const tall = randomTensor([20_000, 3], 7, 'float32');
      const wide = randomTensor([300, 600], 8, 'float32');
      const run = (): number[][] => [
        R.sum(long, 1), R.sum(long), R.sum(tall, 0), R.mean(wide, 0), R.sum(wide, 1), R.max(wide, 0), R.argmax(long, 1),
        R.logsumexp(wide, 1), R.sum(T.transpose(wide, 0, 1), 1),
      ].map((t) => t.toArray());
      T.setNumThreads(1);
      const one = run();
      T.setNumThreads(2);
      const two = run();
      one.forEach((v, i) => assert.deepEqual(v, two[i], `reduction ${i} differs between 1 and 2 threads`));
      const ref64 = (t: T.Tensor, d: number): number[] => R.sum(T.cast(t, 'float64'), d).toArray();
      assertClose(two[0], ref64(long, 1), 1e-3, 1e-5, 'long rows vs float64');
      assertClose(two[2], ref64(tall, 0), 1e-3, 1e-5, 'tall columns vs float64');
    });
  } finally {
    T.setNumThreads(prev);
  }
});

test('portable and AVX-512 reductions agree', () => {
  T.tidy(() => {
    const x = randomTensor([37, 1001], 9, 'float32', 3);
    const run = (): number[][] => [R.sum(x, 1), R.sum(x, 0), R.max(x, 1), R.logsumexp(x, 1), R.mean(x)].map((t) => t.toArray());
    T.native.setIsa('portable');
    let portable: number[][];
    try {
      portable = run();
    } finally {
      T.native.setIsa('avx512');
    }
    run().forEach((v, i) => assertClose(v, portable[i], 1e-4, 1e-5, `reduction ${i} portable vs avx512`));
  });
});

test('bad inputs throw errors naming the op', () => {
  T.tidy(() => {
    const x = T.zeros([2, 3]);
    assert.throws(() => R.sum(x, 2), /sum: dim 2 out of range for \[2,3\]/);
    assert.throws(() => R.mean(x, [0, -2]), /mean: repeated dims/);
    assert.throws(() => R.max(T.zeros([2], 'int32')), /max: unsupported dtype int32/);
    assert.throws(() => R.logsumexp(x, 1.5), /logsumexp: dim 1.5 out of range/);
    const K = T.native as unknown as { reduceSum(...args: unknown[]): void };
    assert.throws(() => K.reduceSum(new Float32Array(5), new Float32Array(2), 2, 3, 1, 1), /reduceSum: argument 'x' needs 6 elements but has 5/);
  });
});

test('E.binaryOp gradients flow through sum (mean of squared error)', () => {
  T.tidy(() => {
    const p = randomTensor([4, 3], 10, 'float64'), q = randomTensor([4, 3], 11, 'float64');
    gradcheck((a, b) => R.mean(E.square(E.sub(a, b))), [p, q]);
  });
});
