import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as T from '../../src/tensor/index.ts';
import { avgPool2x2 } from '../../src/tensor/ops/pool.ts';
import { visionPatchPositions } from '../../src/tensor/ops/rope.ts';
import { indexSelect } from '../../src/tensor/ops/indexing.ts';
import { gradcheck, randomTensor } from '../helpers/gradcheck.ts';

const { tidy } = T;

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length, `length ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

const GRIDS = [{ h: 4, w: 6 }, { t: 2, h: 2, w: 4 }, [1, 6, 2] as const];
const N = 24 + 16 + 12;

test('avgPool2x2 merge-window order: mean of each 4 consecutive rows', () => {
  tidy(() => {
    for (const dt of ['float32', 'float64'] as const) {
      const C = 5;
      const x = randomTensor([N, C], 1, dt);
      const xa = x.toArray();
      const out = avgPool2x2(x, GRIDS);
      assert.deepEqual(out.shape, [N / 4, C]);
      const ref: number[] = [];
      for (let m = 0; m < N / 4; m++)
        for (let c = 0; c < C; c++) ref.push((xa[(4 * m) * C + c] + xa[(4 * m + 1) * C + c] + xa[(4 * m + 2) * C + c] + xa[(4 * m + 3) * C + c]) / 4);
      const d = maxAbsDiff(out.toArray(), ref);
      assert.ok(d <= (dt === 'float32' ? 1e-7 : 1e-15), `${dt}: max abs diff ${d}`);
    }
  });
});

test('avgPool2x2 raster order: 2×2 neighbourhoods per frame; equals merge-window pooling of the permuted rows', () => {
  tidy(() => {
    const C = 3;
    const x = randomTensor([N, C], 2);
    const xa = x.toArray();
    const out = avgPool2x2(x, GRIDS, { order: 'raster' });
    // explicit reference over the raster layout
    const ref: number[] = [];
    let base = 0;
    for (const g of [[1, 4, 6], [2, 2, 4], [1, 6, 2]]) {
      const [t, h, w] = g;
      for (let f = 0; f < t; f++, base += h * w)
        for (let r = 0; r < h / 2; r++)
          for (let c = 0; c < w / 2; c++)
            for (let k = 0; k < C; k++) {
              const at = (rr: number, cc: number): number => xa[(base + rr * w + cc) * C + k];
              ref.push((at(2 * r, 2 * c) + at(2 * r, 2 * c + 1) + at(2 * r + 1, 2 * c) + at(2 * r + 1, 2 * c + 1)) / 4);
            }
    }
    assert.ok(maxAbsDiff(out.toArray(), ref) <= 1e-15, `raster: max abs diff ${maxAbsDiff(out.toArray(), ref)}`);
    // reorder raster rows into merge-window order and pool: same result
    const pos = visionPatchPositions(GRIDS);
    const perm: number[] = [];
    let off = 0, p = 0;
    for (const [t, h, w] of [[1, 4, 6], [2, 2, 4], [1, 6, 2]]) {
      for (let f = 0; f < t; f++, off += h * w) for (let i = 0; i < h * w; i++, p++) perm.push(off + pos[2 * p] * w + pos[2 * p + 1]);
    }
    const mw = avgPool2x2(indexSelect(x, 0, perm), GRIDS);
    assert.ok(maxAbsDiff(mw.toArray(), out.toArray()) <= 1e-15);
  });
});

test('avgPool2x2 gradients (both orders), float64 gradcheck', () => {
  tidy(() => {
    gradcheck((x) => avgPool2x2(x, GRIDS), [randomTensor([N, 3], 3)]);
    gradcheck((x) => avgPool2x2(x, GRIDS, { order: 'raster' }), [randomTensor([N, 3], 4)]);
    // non-contiguous input
    gradcheck((x) => avgPool2x2(T.transpose(x, 0, 1), [{ h: 2, w: 4 }]), [randomTensor([3, 8], 5)]);
  });
});

test('avgPool2x2 errors: odd grids, row-count mismatch, bad shapes', () => {
  tidy(() => {
    const x = randomTensor([24, 2], 6, 'float32');
    assert.throws(() => avgPool2x2(x, [{ h: 3, w: 8 }]), /avgPool2x2: grid 0 has h=3, w=8; both must be even/);
    assert.throws(() => avgPool2x2(x, [{ h: 4, w: 4 }]), /avgPool2x2: the grids hold 16 patches but x \[24,2\] has 24 rows/);
    assert.throws(() => avgPool2x2(x, []), /avgPool2x2: grids must be a non-empty array/);
    assert.throws(() => avgPool2x2(x, [{ h: 0, w: 4 }]), /avgPool2x2: grid 0 \(t=1, h=0, w=4\) must hold positive integers/);
    assert.throws(() => avgPool2x2(T.zeros([24]), [{ h: 4, w: 6 }]), /avgPool2x2: x must be \[N, C\]/);
    assert.throws(() => avgPool2x2(x, [{ h: 4, w: 6 }], { order: 'zigzag' as never }), /avgPool2x2: order must be/);
    const K = T.native as unknown as Record<string, (...a: unknown[]) => void>;
    assert.throws(() => K.avgPool2x2(new Float32Array(48), 24, 2, Int32Array.from([1, 4, 5]), 1, false, new Float32Array(12)), /avgPool2x2: grid 0 \(t=1, h=4, w=5\) needs t >= 1 and even h, w/);
    assert.throws(() => K.avgPool2x2(new Float32Array(40), 24, 2, Int32Array.from([1, 4, 6]), 1, true, new Float32Array(12)), /avgPool2x2: argument 'x' needs 48/);
    assert.throws(() => K.avgPool2x2(new Float32Array(48), 24, 2, Int32Array.from([1, 4]), 1, true, new Float32Array(12)), /avgPool2x2: argument 'grids' needs 3/);
  });
});

test('avgPool2x2: 1 vs 2 threads identical', () => {
  const run = (): number[] =>
    tidy(() => {
      const grids = [{ h: 32, w: 48 }, { t: 2, h: 16, w: 16 }];
      const x = randomTensor([32 * 48 + 512, 64], 7, 'float32');
      x.requiresGrad = true;
      const y = avgPool2x2(x, grids, { order: 'raster' });
      T.backward(y, { grad: y });
      return [...avgPool2x2(x, grids).toArray(), ...y.toArray(), ...x.grad!.toArray()];
    });
  const prev = T.numThreads();
  try {
    T.setNumThreads(1);
    const one = run();
    T.setNumThreads(2);
    assert.equal(maxAbsDiff(one, run()), 0);
  } finally {
    T.setNumThreads(prev);
  }
});

test('no native memory is leaked by avgPool2x2 forward + backward', () => {
  const before = T.nativeMemory().bytes;
  tidy(() => {
    const x = randomTensor([16, 3], 8, 'float32');
    x.requiresGrad = true;
    T.backward(avgPool2x2(T.transpose(T.transpose(x, 0, 1), 0, 1), [{ h: 4, w: 4 }], { order: 'raster' }), { grad: T.ones([4, 3]) });
  });
  assert.equal(T.nativeMemory().bytes, before);
});
