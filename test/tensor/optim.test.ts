import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as T from '../../src/tensor/index.ts';
import { assertClose, assertThreadAndIsaInvariant } from '../helpers/compare.ts';
import { adamwStep, clipGradNorm, type AdamWOptions } from '../../src/tensor/ops/optim.ts';
import { randomArray, randomTensor } from '../helpers/gradcheck.ts';

/** torch.optim.AdamW's update, step by step, in plain JS. */
function refAdamW(p: number[], g: number[], m: number[], v: number[], o: Required<AdamWOptions>): void {
  const bc1 = 1 - o.beta1 ** o.step, bc2 = 1 - o.beta2 ** o.step;
  for (let i = 0; i < p.length; i++) {
    p[i] *= 1 - o.lr * o.weightDecay;
    m[i] = o.beta1 * m[i] + (1 - o.beta1) * g[i];
    v[i] = o.beta2 * v[i] + (1 - o.beta2) * g[i] * g[i];
    p[i] -= (o.lr / bc1) * m[i] / (Math.sqrt(v[i]) / Math.sqrt(bc2) + o.eps);
  }
}

test('adamwStep matches a JS AdamW reference over several steps, in place (float64 and float32)', () => {
  T.tidy(() => {
    for (const dtype of ['float64', 'float32'] as const) {
      const n = 1000;
      const param = T.tensor(randomArray(n, 1), [10, 100], dtype);
      const m = T.zeros([10, 100], dtype), v = T.zeros([10, 100], dtype);
      const storage = param.storage;
      const p = param.toArray(), rm = new Array(n).fill(0), rv = new Array(n).fill(0);
      for (let step = 1; step <= 6; step++) {
        const gv = Array.from(randomArray(n, 100 + step, step));
        const grad = T.tensor(gv, [10, 100], dtype);
        const o = { lr: 1e-2, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1, step };
        adamwStep(param, grad, m, v, o);
        refAdamW(p, gv, rm, rv, o);
      }
      const tol = dtype === 'float64' ? 1e-12 : 1e-5;
      assertClose(param.toArray(), p, tol, tol, `${dtype} param`);
      assertClose(m.toArray(), rm, tol, tol, `${dtype} m`);
      assertClose(v.toArray(), rv, tol, tol, `${dtype} v`);
      assert.equal(param.storage, storage, 'updated in place');
    }
    // torch defaults: beta1 0.9, beta2 0.999, eps 1e-8, weightDecay 0.01
    const p1 = T.tensor([1, -2], [2], 'float64');
    adamwStep(p1, T.tensor([0.5, 0.5], [2], 'float64'), T.zeros([2], 'float64'), T.zeros([2], 'float64'), { lr: 0.1, step: 1 });
    const ref = [1, -2], zeros = [0, 0];
    refAdamW(ref, [0.5, 0.5], [...zeros], [...zeros], { lr: 0.1, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01, step: 1 });
    assertClose(p1.toArray(), ref, 1e-15, 1e-12, 'defaults');
  });
});

test('clipGradNorm returns the global norm and scales in place only above maxNorm', () => {
  T.tidy(() => {
    const a = T.tensor([3, 0], [2]), b = T.tensor([0, 4, 0, 0], [2, 2]);
    assert.equal(clipGradNorm([a, null, b], 10), 5);
    assert.deepEqual(a.toArray(), [3, 0]);
    const norm = clipGradNorm([a, b, undefined], 1);
    assert.equal(norm, 5);
    assertClose([...a.toArray(), ...b.toArray()], [3 / (5 + 1e-6), 0, 0, 4 / (5 + 1e-6), 0, 0], 1e-7, 1e-6, 'scaled');
    assertClose([clipGradNorm([a, b], 100)], [1], 1e-6, 0, 'norm after clipping');
    const big = randomTensor([300_000], 2, 'float64');
    const ref = Math.sqrt(big.toArray().reduce((s, x) => s + x * x, 0));
    assertClose([clipGradNorm([big], Infinity)], [ref], 0, 1e-12, 'large float64 norm');
    assert.equal(clipGradNorm([], 1), 0);
    const inf = T.tensor([Infinity, 1]);
    assert.equal(clipGradNorm([inf], 1), Infinity);
    assert.deepEqual(inf.toArray(), [Infinity, 1], 'non-finite norm: no scaling');
  });
});

test('optimizer kernels are thread-count invariant and agree across ISA paths', () => {
  T.tidy(() => {
    const n = 200_003;
    const run = (): number[][] => T.tidy(() => {
      const p = T.tensor(randomArray(n, 3), [n]), g = T.tensor(randomArray(n, 4), [n]);
      const m = T.tensor(randomArray(n, 5, 0.1), [n]), v = T.tensor(randomArray(n, 6, 0.1).map(Math.abs), [n]);
      adamwStep(p, g, m, v, { lr: 1e-3, step: 3, weightDecay: 0.05 });
      const norm = clipGradNorm([g], 0.5);
      return [p.toArray(), m.toArray(), v.toArray(), g.toArray(), [norm]];
    });
    assertThreadAndIsaInvariant('optimizer', run, 1e-6, 1e-5);
  });
});

test('bad inputs throw errors naming the op and shapes', () => {
  T.tidy(() => {
    const p = T.zeros([2, 3]), z = T.zeros([2, 3]);
    assert.throws(() => adamwStep(p, T.zeros([3, 2]), z, z, { lr: 1, step: 1 }), /adamwStep: grad \[3,2\] does not match param \[2,3\]/);
    assert.throws(() => adamwStep(p, z, T.zeros([6]), z, { lr: 1, step: 1 }), /adamwStep: m \[6\] does not match param \[2,3\]/);
    assert.throws(() => adamwStep(p, z, z, T.zeros([2, 3], 'float64'), { lr: 1, step: 1 }), /adamwStep: v is float64, param is float32/);
    assert.throws(() => adamwStep(p, z, T.transpose(T.zeros([3, 2]), 0, 1), z, { lr: 1, step: 1 }), /adamwStep: m \[2,3\] must be contiguous/);
    assert.throws(() => adamwStep(p, z, z, z, { lr: 1, step: 0 }), /adamwStep: step must be an integer >= 1/);
    assert.throws(() => adamwStep(p, z, z, z, { lr: 1, step: 1, beta1: 1 }), /adamwStep: betas must be in \[0, 1\)/);
    assert.throws(() => adamwStep(T.zeros([2], 'int32'), z, z, z, { lr: 1, step: 1 }), /adamwStep: param must be float32 or float64/);
    assert.throws(() => clipGradNorm([T.zeros([2], 'int32')], 1), /clipGradNorm: gradient \[2\] is int32/);
    assert.throws(() => clipGradNorm([p], -1), /clipGradNorm: maxNorm must be a non-negative number/);
    const K = T.native as unknown as { adamwStep(...args: unknown[]): void };
    assert.throws(() => K.adamwStep(new Float32Array(4), new Float32Array(4), new Float32Array(3), new Float32Array(4), 4, 1, 0.9, 0.99, 1e-8, 0, 1), /adamwStep: argument 'm' needs 4 elements but has 3/);
  });
});
