import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as T from '../../src/tensor/index.ts';
import { gradcheck, randomTensor } from '../helpers/gradcheck.ts';

test('view ops: gradients match finite differences', () => {
  const x = randomTensor([2, 3, 4], 1);
  gradcheck((a) => T.permute(a, [2, 0, 1]), [x]);
  gradcheck((a) => T.reshape(T.transpose(a, 0, 2), [4, 6]), [x]);
  gradcheck((a) => T.narrow(a, 2, 1, 2), [x]);
  gradcheck((a) => T.select(a, 1, 2), [x]);
  gradcheck((a) => T.contiguous(T.transpose(a, 1, 2)), [x]);
  gradcheck((a) => T.cast(T.cast(a, 'float32'), 'float64'), [x], { atol: 1e-4, rtol: 1e-3, eps: 1e-3 });
  const y = randomTensor([2, 5, 4], 2);
  gradcheck((a, b) => T.cat([a, b, a], 1), [x, y]);
  gradcheck((a, b) => T.stack([T.narrow(a, 1, 0, 2), T.narrow(b, 1, 3, 2)], 0), [x, y]);
  x.dispose();
  y.dispose();
});

test('gradients accumulate across backward calls until zeroed', () => {
  const x = T.keep(T.tensor([1, 2, 3], [3], 'float64'));
  x.requiresGrad = true;
  const g = T.tensor([1, 1, 1], [3], 'float64');
  T.backward(T.narrow(x, 0, 0, 3), { grad: g });
  T.backward(T.narrow(x, 0, 1, 2), { grad: T.tensor([5, 7], [2], 'float64') });
  assert.deepEqual(x.grad!.toArray(), [1, 6, 8]);
  x.dispose();
});

test('a tensor used twice gets the sum of both gradients', () => {
  const x = T.tensor([1, 2, 3, 4], [2, 2], 'float64');
  x.requiresGrad = true;
  const y = T.cat([T.transpose(x), x], 0);
  T.backward(y, { grad: T.tensor([1, 2, 3, 4, 10, 20, 30, 40], [4, 2], 'float64') });
  assert.deepEqual(x.grad!.toArray(), [11, 23, 32, 44]);
});

test('noGrad records nothing; backward twice needs retainGraph', () => {
  const x = T.tensor([1, 2], [2], 'float64');
  x.requiresGrad = true;
  const y = T.noGrad(() => T.reshape(x, [1, 2]));
  assert.equal(y.requiresGrad, false);
  assert.equal(y.node, null);
  const z = T.reshape(x, [2, 1]);
  T.backward(z, { grad: T.ones([2, 1], 'float64'), retainGraph: true });
  T.backward(z, { grad: T.ones([2, 1], 'float64') });
  assert.deepEqual(x.grad!.toArray(), [2, 2]);
  assert.throws(() => T.backward(z, { grad: T.ones([2, 1], 'float64') }), /already freed/);
  assert.throws(() => T.backward(T.reshape(x, [2, 1])), /pass opts.grad for non-scalar roots/);
  assert.throws(() => T.backward(T.ones([1])), /does not require grad/);
});

test('saved tensors survive the scope that created them; disposing results frees the graph', () => {
  const before = T.nativeMemory().blocks;
  const x = T.keep(T.tensor([1, 2, 3, 4], [4], 'float64'));
  x.requiresGrad = true;
  const out = T.tidy(() => T.cat([T.narrow(x, 0, 1, 2), x], 0));
  const seed = T.tensor([1, 2, 3, 4, 5, 6], [6], 'float64');
  T.backward(out, { grad: seed });
  assert.deepEqual(x.grad!.toArray(), [3, 5, 7, 6]);
  seed.dispose();
  out.dispose();
  x.dispose();
  assert.equal(T.nativeMemory().blocks, before);
});
