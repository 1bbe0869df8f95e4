import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as T from '../../src/tensor/index.ts';
import { crossEntropy, type CrossEntropyOptions } from '../../src/tensor/ops/loss.ts';
import { assertClose, assertThreadAndIsaInvariant } from '../helpers/compare.ts';
import { gradcheck, randomTensor } from '../helpers/gradcheck.ts';

/** Per-row losses and the reduced loss, in plain JS (torch semantics). */
function refCE(x: number[], V: number, t: number[], o: CrossEntropyOptions = {}): number[] {
  const ignore = o.ignoreIndex ?? -100, eps = o.labelSmoothing ?? 0;
  const rows: number[] = [];
  let sum = 0, count = 0;
  t.forEach((ti, i) => {
    if (ti === ignore) { rows.push(0); return; }
    const row = x.slice(i * V, (i + 1) * V);
    const m = Math.max(...row);
    const lse = m + Math.log(row.reduce((a, v) => a + Math.exp(v - m), 0));
    const mean = row.reduce((a, v) => a + v, 0) / V;
    const l = (1 - eps) * (lse - row[ti]) + eps * (lse - mean);
    rows.push(l);
    sum += l;
    count++;
  });
  if (o.reduction === 'none') return rows;
  if (o.reduction === 'sum') return [sum];
  return [count ? sum / count : 0];
}

const int32 = (v: number[], shape?: number[]): T.Tensor => T.tensor(v, shape ?? [v.length], 'int32');

test('crossEntropy matches a JS reference: reductions, ignoreIndex, label smoothing, 3-d logits', () => {
  T.tidy(() => {
    const x = randomTensor([6, 11], 1, 'float32', 4);
    const tg = [3, -100, 10, 0, 7, -100];
    const xv = x.toArray();
    for (const reduction of ['mean', 'sum', 'none'] as const) {
      for (const labelSmoothing of [0, 0.1]) {
        const o = { reduction, labelSmoothing };
        assertClose(crossEntropy(x, int32(tg), o).toArray(), refCE(xv, 11, tg, o), 1e-5, 1e-5, `${reduction} smoothing ${labelSmoothing}`);
      }
    }
    assertClose(crossEntropy(x, int32([3, 5, 10, 0, 7, 5]), { ignoreIndex: 5 }).toArray(), refCE(xv, 11, [3, 5, 10, 0, 7, 5], { ignoreIndex: 5 }), 1e-5, 1e-5, 'custom ignoreIndex');
    assert.deepEqual(crossEntropy(x, int32(tg), { reduction: 'mean' }).shape, []);
    // [B, T, V] logits with [B, T] targets; 'none' keeps the target shape
    const x3 = T.reshape(x, [2, 3, 11]);
    assert.deepEqual(crossEntropy(x3, int32(tg, [2, 3]), { reduction: 'none' }).shape, [2, 3]);
    assertClose(crossEntropy(x3, int32(tg, [2, 3])).toArray(), refCE(xv, 11, tg), 1e-5, 1e-5, '3-d logits');
    // strided logits (a transposed view)
    const xt = T.transpose(randomTensor([11, 6], 2, 'float32', 4), 0, 1);
    assertClose(crossEntropy(xt, int32(tg)).toArray(), refCE(xt.toArray(), 11, tg), 1e-5, 1e-5, 'strided logits');
    // large logits keep their precision
    const big = T.tensor([1000, 999, 998, -1000, 0, 1000], [2, 3]);
    assertClose(crossEntropy(big, int32([1, 0]), { reduction: 'none' }).toArray(), refCE(big.toArray(), 3, [1, 0], { reduction: 'none' }), 1e-6, 1e-5, 'large logits');
    // every row ignored: 0, not NaN
    assert.equal(crossEntropy(x, int32(new Array(6).fill(-100))).item(), 0);
    assert.equal(crossEntropy(T.zeros([0, 4]), int32([])).item(), 0);
  });
});

test('crossEntropy gradients match finite differences (ignore rows, smoothing, every reduction)', () => {
  T.tidy(() => {
    const x = randomTensor([5, 7], 3, 'float64', 3);
    const tg = int32([2, -100, 6, 0, 3]);
    for (const reduction of ['mean', 'sum', 'none'] as const) {
      for (const labelSmoothing of [0, 0.2]) gradcheck((p) => crossEntropy(p, tg, { reduction, labelSmoothing }), [x]);
    }
    gradcheck((p) => crossEntropy(T.transpose(p, 0, 1), tg), [randomTensor([7, 5], 4, 'float64', 3)]);
    // ignored rows get exactly zero gradient; all-ignored gives zero everywhere
    const xi = T.keep(randomTensor([2, 3], 5, 'float64'));
    xi.requiresGrad = true;
    T.backward(crossEntropy(xi, int32([-100, 1])));
    assert.deepEqual(xi.grad!.toArray().slice(0, 3), [0, 0, 0]);
    xi.grad!.dispose();
    xi.grad = null;
    T.backward(crossEntropy(xi, int32([-100, -100])));
    assert.deepEqual(xi.grad!.toArray(), [0, 0, 0, 0, 0, 0]);
    xi.dispose();
  });
});

test('targets are bounds-checked; errors name the op, row and value', () => {
  T.tidy(() => {
    const x = T.zeros([3, 4]);
    assert.throws(() => crossEntropy(x, int32([0, 4, 1])), /crossEntropy: target 4 at row 1 is out of range for 4 classes/);
    assert.throws(() => crossEntropy(x, int32([0, 1, -1])), /crossEntropy: target -1 at row 2 is out of range/);
    assert.throws(() => crossEntropy(x, int32([0, 1, 2]), { ignoreIndex: 2, labelSmoothing: 1.5 }), /crossEntropy: labelSmoothing must be in \[0, 1\]/);
    assert.throws(() => crossEntropy(x, T.tensor([0, 1, 2], [3], 'float32')), /crossEntropy: targets must be int32, got float32/);
    assert.throws(() => crossEntropy(x, int32([0, 1])), /crossEntropy: logits \[3,4\] need targets of shape \[3\], got \[2\]/);
    assert.throws(() => crossEntropy(T.zeros([3, 4], 'int32'), int32([0, 1, 2])), /crossEntropy: unsupported dtype int32/);
    assert.throws(() => crossEntropy(x, int32([0, 1, 2]), { reduction: 'avg' as 'mean' }), /crossEntropy: unknown reduction 'avg'/);
    const K = T.native as unknown as { crossEntropyBackward(...args: unknown[]): void };
    assert.throws(() => K.crossEntropyBackward(new Float32Array(12), new Int32Array([0, 9, 1]), new Float32Array(6), new Float32Array(1), 0, 1, new Float32Array(12), 3, 4, -100, 0),
      /crossEntropy: target 9 at row 1/);
  });
});

test('crossEntropy is thread-count invariant and agrees across ISA paths', () => {
  T.tidy(() => {
    const x = randomTensor([64, 5000], 6, 'float32', 5);
    const tg = int32(Array.from({ length: 64 }, (_, i) => (i % 9 === 0 ? -100 : (i * 977) % 5000)));
    const run = (): number[][] => {
      const xi = T.keep(T.contiguousCopy(x));
      xi.requiresGrad = true;
      const loss = crossEntropy(xi, tg, { labelSmoothing: 0.05 });
      T.backward(loss);
      const out = [loss.toArray(), xi.grad!.toArray()];
      xi.dispose();
      return out;
    };
    assertThreadAndIsaInvariant('crossEntropy', run, 1e-7, 1e-5);
  });
});
