// linearSwiGLU and linearAct: linear layers fused with what follows. Each must
// equal its composition of plain ops exactly, on the fused AMX path
// (bf16 weights, >= 16 rows, bf16 precision) and on the composed fallbacks.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as T from '../../src/tensor/index.ts';
import { setMatmulPrecision, matmulPrecision } from '../../src/tensor/ops/matmul.ts';
import { randomTensor } from '../helpers/gradcheck.ts';

const f32 = (shape: number[], seed: number) => randomTensor(shape, seed, 'float32');
const composed = (x: T.Tensor, g: T.Tensor, u: T.Tensor, gb?: T.Tensor, ub?: T.Tensor) =>
  T.swiglu(T.linear(x, g, gb), T.linear(x, u, ub));

test('linearSwiGLU equals swiglu(linear, linear): f32 and bf16 weights, both precisions, 1 and 2 threads', () => {
  const prevPrec = matmulPrecision(), prevThreads = T.numThreads();
  try {
    T.tidy(() => {
      // Rows below and above the fused path's 16, ragged N (panels of 32) and K (steps of 32), depth blocks.
      for (const [M, K, N] of [[3, 64, 100], [16, 96, 70], [40, 2085, 45], [300, 256, 300], [65, 33, 31]]) {
        const x = f32([M, K], M), gf = f32([N, K], N), uf = f32([N, K], N + 1), gb = f32([N], 7), ub = f32([N], 8);
        for (const wdt of ['float32', 'bfloat16'] as const) {
          const g = T.cast(gf, wdt), u = T.cast(uf, wdt);
          for (const prec of ['f32', 'bf16'] as const) {
            setMatmulPrecision(prec);
            for (const t of [1, 2]) {
              T.setNumThreads(t);
              assert.deepEqual(T.linearSwiGLU(x, g, u).toArray(), composed(x, g, u).toArray(), `${M}x${K}x${N} ${wdt} ${prec} ${t}t`);
              assert.deepEqual(T.linearSwiGLU(x, g, u, gb, ub).toArray(), composed(x, g, u, gb, ub).toArray(), `${M}x${K}x${N} ${wdt} ${prec} ${t}t, biases`);
            }
          }
        }
      }
    });
  } finally {
    setMatmulPrecision(prevPrec);
    T.setNumThreads(prevThreads);
  }
});

test('linearSwiGLU: batched and strided x, gradients through the composed ops, bad inputs', () => {
  T.tidy(() => {
    const g = f32([24, 40], 1), u = f32([24, 40], 2);
    const x3 = f32([2, 20, 40], 3);
    assert.deepEqual(T.linearSwiGLU(x3, g, u).shape, [2, 20, 24]);
    assert.deepEqual(T.linearSwiGLU(x3, g, u).toArray(), composed(x3, g, u).toArray());
    const xt = T.transpose(f32([40, 20], 4));  // [20, 40], not contiguous
    assert.deepEqual(T.linearSwiGLU(xt, g, u).toArray(), composed(T.contiguous(xt), g, u).toArray());
    // Gradient wanted: the composed path, so the gradients are those of linear/linear/swiglu.
    const g64 = randomTensor([24, 40], 6), u64 = randomTensor([24, 40], 7);
    const xg = randomTensor([5, 40], 5), xr = randomTensor([5, 40], 5);
    xg.requiresGrad = true;
    xr.requiresGrad = true;
    T.backward(T.sum(T.linearSwiGLU(xg, g64, u64)));
    T.backward(T.sum(composed(xr, g64, u64)));
    assert.deepEqual(xg.grad!.toArray(), xr.grad!.toArray());
  });
  assert.throws(() => T.tidy(() => T.linearSwiGLU(f32([2, 40], 1), f32([24, 40], 1), f32([25, 40], 2))), /linearSwiGLU: gate \[24,40\] float32 and up \[25,40\] float32/);
  assert.throws(() => T.tidy(() => T.linearSwiGLU(f32([2, 41], 1), f32([24, 40], 1), f32([24, 40], 2))), /linearSwiGLU: x \[2,41\] float32 has 41 features, the weights expect 40/);
  assert.throws(() => T.tidy(() => T.linearSwiGLU(f32([2, 40], 1), f32([24, 40], 1), T.cast(f32([24, 40], 2), 'bfloat16'))), /one dtype/);
  assert.throws(() => T.tidy(() => T.linearSwiGLU(f32([2, 40], 1), f32([24, 40], 1), f32([24, 40], 2), f32([23], 3))), /linearSwiGLU: gate bias must be \[24\] float32, got \[23\] float32/);
});

test('linearAct equals activate(linear): every activation, f32 and bf16 weights, both precisions, 1 and 2 threads', () => {
  const prevPrec = matmulPrecision(), prevThreads = T.numThreads();
  try {
    T.tidy(() => {
      for (const [M, K, N] of [[3, 64, 100], [16, 96, 70], [40, 2085, 45], [300, 256, 300]]) {
        const x = f32([M, K], M + 1), wf = f32([N, K], N + 2), b = f32([N], 9);
        for (const wdt of ['float32', 'bfloat16'] as const) {
          const w = T.cast(wf, wdt);
          for (const prec of ['f32', 'bf16'] as const) {
            setMatmulPrecision(prec);
            for (const act of ['relu', 'gelu', 'geluTanh', 'quickGelu', 'silu', 'sigmoid', 'tanh'] as const) {
              for (const t of [1, 2]) {
                T.setNumThreads(t);
                const what = `${M}x${K}x${N} ${wdt} ${prec} ${act} ${t}t`;
                assert.deepEqual(T.linearAct(x, w, b, act).toArray(), T.activate(T.linear(x, w, b), act).toArray(), what);
                if (act === 'gelu') assert.deepEqual(T.linearAct(x, w, null, act).toArray(), T.gelu(T.linear(x, w)).toArray(), `${what}, no bias`);
              }
            }
          }
        }
      }
    });
  } finally {
    setMatmulPrecision(prevPrec);
    T.setNumThreads(prevThreads);
  }
});

test('linearAct: gradients through the composed ops, bad inputs', () => {
  T.tidy(() => {
    const w = randomTensor([24, 40], 6), b = randomTensor([24], 7);
    const xg = randomTensor([5, 40], 5), xr = randomTensor([5, 40], 5);
    xg.requiresGrad = true;
    xr.requiresGrad = true;
    T.backward(T.sum(T.linearAct(xg, w, b, 'geluTanh')));
    T.backward(T.sum(T.geluTanh(T.linear(xr, w, b))));
    assert.deepEqual(xg.grad!.toArray(), xr.grad!.toArray());
    // Empty shapes: no rows, no outputs, no inputs.
    assert.deepEqual(T.linearAct(f32([0, 40], 1), f32([24, 40], 2), null, 'gelu').shape, [0, 24]);
    assert.deepEqual(T.linearAct(f32([3, 40], 1), f32([0, 40], 2), null, 'gelu').shape, [3, 0]);
    assert.deepEqual(T.linearSwiGLU(f32([3, 0], 1), f32([5, 0], 2), f32([5, 0], 3)).toArray(), new Array(15).fill(0));
  });
  assert.throws(() => T.tidy(() => T.linearAct(f32([2, 40], 1), f32([24, 40], 1), null, 'none')), /linearAct: unknown activation 'none'/);
  assert.throws(() => T.tidy(() => T.linearAct(f32([2, 40], 1), f32([24, 40], 1), null, 'swish' as never)), /linearAct: unknown activation 'swish'/);
  assert.throws(() => T.tidy(() => T.linearAct(f32([2, 41], 1), f32([24, 40], 1), null, 'gelu')), /linearAct: x \[2,41\] float32 has 41 features/);
  assert.throws(() => T.tidy(() => T.linearAct(f32([2, 40], 1), f32([24, 40], 1), f32([3], 1), 'gelu')), /linearAct: bias must be \[24\] float32, got \[3\] float32/);
});
