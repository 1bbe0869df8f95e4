import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as T from '../../src/tensor/index.ts';
import * as S from '../../src/tensor/ops/softmax.ts';
import { assertClose, assertThreadAndIsaInvariant } from '../helpers/compare.ts';
import { gradcheck, randomTensor } from '../helpers/gradcheck.ts';

/** Row-wise reference over the last dim of a [rows, n] array. */
function refRows(vals: number[], n: number, log: boolean): number[] {
  const out: number[] = [];
  for (let r = 0; r < vals.length / n; r++) {
    const row = vals.slice(r * n, (r + 1) * n);
    const m = Math.max(...row);
    const s = row.reduce((a, v) => a + Math.exp(v - m), 0);
    for (const v of row) out.push(log ? v - m - Math.log(s) : Math.exp(v - m) / s);
  }
  return out;
}

test('softmax and logSoftmax match a JS reference (last dim, other dims, strided, large logits)', () => {
  T.tidy(() => {
    const x = randomTensor([4, 3, 37], 1, 'float32', 5);
    for (const log of [false, true]) {
      const f = log ? S.logSoftmax : S.softmax;
      const name = log ? 'logSoftmax' : 'softmax';
      assertClose(f(x).toArray(), refRows(x.toArray(), 37, log), 1e-6, 1e-5, `${name} last dim`);
      const moved = T.contiguous(T.transpose(x, 0, 2)); // [37, 3, 4]; softmax over dim 0 of it
      const viaLast = T.contiguous(T.transpose(f(T.transpose(moved, 0, 2)), 0, 2));
      assertClose(f(moved, 0).toArray(), viaLast.toArray(), 1e-7, 1e-6, `${name} dim 0`);
      const strided = T.transpose(x, 1, 2); // [4, 37, 3]
      assertClose(f(strided).toArray(), refRows(T.contiguous(strided).toArray(), 3, log), 1e-6, 1e-5, `${name} strided`);
      const big = T.tensor([1000, 999, -1000, 0], [2, 2]);
      assertClose(f(big).toArray(), refRows(big.toArray(), 2, log), 1e-6, 1e-6, `${name} large logits`);
    }
    // masked (-inf) logits get exactly 0 probability
    const masked = S.softmax(T.tensor([0, -Infinity, 1, -Infinity], [1, 4])).toArray();
    assert.equal(masked[1], 0);
    assert.equal(masked[3], 0);
    assertClose(masked, [1 / (1 + Math.E), 0, Math.E / (1 + Math.E), 0], 1e-7, 1e-6, 'masked softmax');
    assert.deepEqual(S.softmax(T.zeros([0, 5])).shape, [0, 5]);
    assert.deepEqual(S.softmax(T.zeros([3, 0])).shape, [3, 0]);
    assertClose(S.softmax(T.zeros([2, 4], 'float64')).toArray(), new Array(8).fill(0.25), 0, 1e-15, 'uniform f64');
  });
});

test('softmax gradients match finite differences', () => {
  T.tidy(() => {
    const x = randomTensor([3, 7], 2, 'float64', 3);
    gradcheck((t) => S.softmax(t), [x]);
    gradcheck((t) => S.logSoftmax(t), [x]);
    const y = randomTensor([4, 3, 5], 3, 'float64', 3);
    gradcheck((t) => S.softmax(t, 1), [y]);
    gradcheck((t) => S.logSoftmax(t, 0), [y]);
    gradcheck((t) => S.softmax(T.transpose(t, 0, 2)), [y]);
  });
});

test('softmax is thread-count invariant and agrees across ISA paths', () => {
  T.tidy(() => {
    const x = randomTensor([200, 999], 4, 'float32', 8);
    const g = randomTensor([200, 999], 5, 'float32');
    const run = (): number[][] => {
      const out: number[][] = [];
      for (const f of [S.softmax, S.logSoftmax]) {
        const xi = T.keep(T.contiguousCopy(x));
        xi.requiresGrad = true;
        const y = f(xi);
        T.backward(y, { grad: g });
        out.push(y.toArray(), xi.grad!.toArray());
        xi.dispose();
      }
      return out;
    };
    assertThreadAndIsaInvariant('softmax', run, 1e-6, 1e-5);
  });
});

test('bad inputs throw errors naming the op', () => {
  T.tidy(() => {
    assert.throws(() => S.softmax(T.zeros([2], 'int32')), /softmax: unsupported dtype int32/);
    assert.throws(() => S.logSoftmax(T.scalar(1)), /logSoftmax: input must have at least one dim/);
    assert.throws(() => S.softmax(T.zeros([2, 3]), 2), /softmax: dim 2 out of range/);
    const K = T.native as unknown as { softmaxForward(...args: unknown[]): void };
    assert.throws(() => K.softmaxForward(new Float32Array(6), new Float32Array(5), 2, 3, false), /softmaxForward: argument 'y' needs 6 elements but has 5/);
  });
});
