import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as T from '../../src/tensor/index.ts';
import * as nn from '../../src/nn/index.ts';

// 1,000 forward/backward/AdamW steps of a small MLP: native memory must not grow.
test('native memory is stable across 1000 training steps of a small MLP', () => {
  T.manualSeed(7);
  const fc1 = new nn.Linear(32, 64);
  const fc2 = new nn.Linear(64, 10);
  const params = [...fc1.parameters(), ...fc2.parameters()];
  const state = params.map((p) => ({ m: T.keep(T.zerosLike(p)), v: T.keep(T.zerosLike(p)) }));
  const x = T.keep(T.randn([16, 32], { seed: 1 }));
  const y = T.keep(T.tensor(Array.from({ length: 16 }, (_, i) => i % 10), [16], 'int32'));
  const step = (k: number): number =>
    T.tidy(() => {
      const loss = T.crossEntropy(fc2.forward(T.gelu(fc1.forward(x))), y);
      T.backward(loss);
      params.forEach((p, i) => {
        T.adamwStep(p, p.grad!, state[i].m, state[i].v, { lr: 1e-2, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01, step: k });
        p.grad!.dispose();
        p.grad = null;
      });
      return loss.item();
    });
  let first = 0;
  for (let k = 1; k <= 10; k++) first = step(k);
  const baseline = T.nativeMemory();
  let last = first;
  for (let k = 11; k <= 1000; k++) last = step(k);
  const after = T.nativeMemory();
  assert.equal(after.bytes, baseline.bytes, `native bytes grew from ${baseline.bytes} to ${after.bytes}`);
  assert.equal(after.blocks, baseline.blocks);
  assert.ok(last < first * 0.1, `the MLP should fit its batch: loss ${first} -> ${last}`);
  for (const t of [x, y, ...state.flatMap((s) => [s.m, s.v])]) t.dispose();
  fc1.dispose();
  fc2.dispose();
});
