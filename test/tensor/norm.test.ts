import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as T from '../../src/tensor/index.ts';
import * as N from '../../src/tensor/ops/norm.ts';
import { addScalar } from '../../src/tensor/ops/elementwise.ts';
import { assertClose, assertThreadAndIsaInvariant } from '../helpers/compare.ts';
import { gradcheck, randomTensor } from '../helpers/gradcheck.ts';

function refNorm(x: number[], D: number, w: number[] | null, b: number[] | null, eps: number, rms: boolean): number[] {
  const out: number[] = [];
  for (let r = 0; r < x.length / D; r++) {
    const row = x.slice(r * D, (r + 1) * D);
    const mu = rms ? 0 : row.reduce((a, v) => a + v, 0) / D;
    const ms = row.reduce((a, v) => a + (v - mu) ** 2, 0) / D;
    const rs = 1 / Math.sqrt(ms + eps);
    row.forEach((v, j) => out.push((v - mu) * rs * (w ? w[j] : 1) + (b ? b[j] : 0)));
  }
  return out;
}

test('layerNorm and rmsNorm match a JS reference (with/without weight and bias, strided input)', () => {
  T.tidy(() => {
    const x = addScalar(randomTensor([5, 3, 24], 1, 'float32', 3), 2); // offset mean: tests centering
    const w = randomTensor([24], 2, 'float32'), b = randomTensor([24], 3, 'float32');
    const xv = x.toArray(), wv = w.toArray(), bv = b.toArray();
    for (const [wi, bi] of [[w, b], [w, null], [null, b], [null, null]] as const) {
      const tag = `${wi ? 'w' : ''}${bi ? 'b' : ''}`;
      assertClose(N.layerNorm(x, wi, bi, 1e-5).toArray(), refNorm(xv, 24, wi ? wv : null, bi ? bv : null, 1e-5, false), 1e-5, 1e-5, `layerNorm ${tag}`);
    }
    assertClose(N.rmsNorm(x, w, 1e-6).toArray(), refNorm(xv, 24, wv, null, 1e-6, true), 1e-5, 1e-5, 'rmsNorm w');
    assertClose(N.rmsNorm(x).toArray(), refNorm(xv, 24, null, null, 1e-6, true), 1e-5, 1e-5, 'rmsNorm');
    const xt = T.transpose(randomTensor([24, 6], 4, 'float32'), 0, 1); // [6, 24], strided
    assertClose(N.layerNorm(xt, w, b).toArray(), refNorm(xt.toArray(), 24, wv, bv, 1e-5, false), 1e-5, 1e-5, 'layerNorm strided');
    assertClose(N.rmsNorm(xt, w).toArray(), refNorm(xt.toArray(), 24, wv, null, 1e-6, true), 1e-5, 1e-5, 'rmsNorm strided');
    // a constant row normalises to the bias
    assertClose(N.layerNorm(T.full([1, 4], 3), null, T.tensor([1, 2, 3, 4])).toArray(), [1, 2, 3, 4], 1e-6, 0, 'constant row');
    assert.deepEqual(N.layerNorm(T.zeros([0, 8]), T.ones([8])).shape, [0, 8]);
    assert.deepEqual(N.rmsNorm(T.zeros([2, 0])).shape, [2, 0]);
  });
});

test('norm gradients (x, weight, bias) match finite differences', () => {
  T.tidy(() => {
    const x = randomTensor([4, 7], 5, 'float64', 2);
    const w = randomTensor([7], 6, 'float64'), b = randomTensor([7], 7, 'float64');
    gradcheck((p, q, r) => N.layerNorm(p, q, r), [x, w, b]);
    gradcheck((p, q) => N.layerNorm(p, q, null), [x, w]);
    gradcheck((p, r) => N.layerNorm(p, null, r), [x, b]);
    gradcheck((p) => N.layerNorm(p), [x]);
    gradcheck((p, q) => N.rmsNorm(p, q), [x, w]);
    gradcheck((p) => N.rmsNorm(p), [x]);
    gradcheck((p, q, r) => N.layerNorm(p, q, r), [x, w, b], { wrt: [1, 2] }); // parameters only
    gradcheck((p) => N.rmsNorm(T.transpose(p, 0, 1), w), [randomTensor([7, 3], 8, 'float64')]);
  });
});

test('norms are thread-count invariant (incl. weight/bias gradients) and agree across ISA paths', () => {
  T.tidy(() => {
    const x = randomTensor([512, 384], 9, 'float32', 2);
    const g = randomTensor([512, 384], 10, 'float32');
    const run = (): number[][] => {
      const out: number[][] = [];
      for (const rms of [false, true]) {
        const xi = T.keep(T.contiguousCopy(x)), w = T.keep(T.ones([384])), b = T.keep(T.zeros([384]));
        for (const t of [xi, w, b]) t.requiresGrad = true;
        const y = rms ? N.rmsNorm(xi, w) : N.layerNorm(xi, w, b);
        T.backward(y, { grad: g });
        out.push(y.toArray(), xi.grad!.toArray(), w.grad!.toArray(), ...(rms ? [] : [b.grad!.toArray()]));
        for (const t of [xi, w, b]) t.dispose();
      }
      return out;
    };
    assertThreadAndIsaInvariant('norm', run, 1e-4, 1e-4);
  });
});

test('bad inputs throw errors naming the op and shapes', () => {
  T.tidy(() => {
    const x = T.zeros([2, 4]);
    assert.throws(() => N.layerNorm(x, T.ones([5])), /layerNorm: weight \[5\] does not match the last dim of x \[2,4\]/);
    assert.throws(() => N.layerNorm(x, null, T.ones([2, 2])), /layerNorm: bias \[2,2\] does not match/);
    assert.throws(() => N.rmsNorm(x, T.ones([4], 'float64')), /rmsNorm: dtype mismatch float32 vs float64/);
    assert.throws(() => N.rmsNorm(T.scalar(1)), /rmsNorm: input must have at least one dim/);
    assert.throws(() => N.layerNorm(x, null, null, -1), /layerNorm: eps must be a non-negative number/);
    const K = T.native as unknown as { rmsNormForward(...args: unknown[]): void };
    assert.throws(() => K.rmsNormForward(new Float32Array(8), new Float32Array(3), new Float32Array(8), new Float32Array(2), 2, 4, 1e-6), /rmsNormForward: argument 'weight' needs 4 elements but has 3/);
  });
});
