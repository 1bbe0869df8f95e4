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
