import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as T from '../../src/tensor/index.ts';

test('creation: tensor, zeros, ones, full, arange, scalar', () => {
  T.tidy(() => {
    assert.deepEqual(T.tensor([1, 2, 3, 4], [2, 2]).toArray(), [1, 2, 3, 4]);
    assert.deepEqual(T.zeros([3]).toArray(), [0, 0, 0]);
    assert.deepEqual(T.ones([2], 'int32').toArray(), [1, 1]);
    assert.deepEqual(T.full([2], 2.5, 'float64').toArray(), [2.5, 2.5]);
    assert.deepEqual(T.arange(4, 'int64').toArray(), [0, 1, 2, 3]);
    assert.equal(T.scalar(7).item(), 7);
    assert.equal(T.scalar(7).ndim, 0);
  });
});

test('dtype conversions round-trip through bf16, f16, ints', () => {
  T.tidy(() => {
    const x = T.tensor([1.5, -2.25, 3.0078125, 65504], [4]);
    assert.deepEqual(T.cast(x, 'bfloat16').toArray(), [1.5, -2.25, 3, 65536]);
    assert.deepEqual(T.cast(x, 'float16').toArray(), [1.5, -2.25, 3.0078125, 65504]);
    assert.deepEqual(T.cast(T.tensor([1.9, -1.9]), 'int32').toArray(), [1, -1]);
    assert.deepEqual(T.cast(T.tensor([3, 4], [2], 'int64'), 'float32').toArray(), [3, 4]);
    // bf16 rounding is round-to-nearest-even, like torch
    assert.equal(T.bf16ToF32(T.f32ToBf16(1 + 2 ** -8)), 1);
    assert.equal(T.bf16ToF32(T.f32ToBf16(1 + 3 * 2 ** -8)), 1 + 2 ** -6);
  });
});

test('views share storage; contiguous copies follow strides', () => {
  T.tidy(() => {
    const a = T.tensor([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11], [2, 3, 2]);
    const p = T.permute(a, [2, 0, 1]);
    assert.deepEqual(p.shape, [2, 2, 3]);
    assert.equal(p.storage, a.storage);
    assert.deepEqual(T.contiguous(p).toArray(), [0, 2, 4, 6, 8, 10, 1, 3, 5, 7, 9, 11]);
    // reshape of a non-contiguous view copies
    assert.deepEqual(T.reshape(p, [12]).toArray(), [0, 2, 4, 6, 8, 10, 1, 3, 5, 7, 9, 11]);
    // reshape that only splits a contiguous dim stays a view
    const r = T.reshape(T.narrow(a, 0, 1, 1), [3, 2]);
    assert.equal(r.storage, a.storage);
    assert.deepEqual(r.toArray(), [6, 7, 8, 9, 10, 11]);
    assert.deepEqual(T.reshape(a, [-1, 4]).shape, [3, 4]);
    assert.deepEqual(T.select(a, 1, 2).toArray(), [4, 5, 10, 11]);
    assert.deepEqual(T.expand(T.tensor([1, 2], [2, 1]), [2, 3]).toArray(), [1, 1, 1, 2, 2, 2]);
    assert.deepEqual(T.cat([T.tensor([1, 2], [1, 2]), T.tensor([3, 4, 5, 6], [2, 2])], 0).toArray(), [1, 2, 3, 4, 5, 6]);
    assert.deepEqual(T.stack([T.tensor([1, 2]), T.tensor([3, 4])], 1).toArray(), [1, 3, 2, 4]);
    const [s0, s1] = T.split(T.arange(5), [2, 3]);
    assert.deepEqual([s0.toArray(), s1.toArray()], [[0, 1], [2, 3, 4]]);
    assert.deepEqual(T.squeeze(T.zeros([1, 3, 1])).shape, [3]);
    assert.deepEqual(T.unsqueeze(T.zeros([3]), -1).shape, [3, 1]);
  });
});

test('bad shapes and dims give errors naming the op', () => {
  T.tidy(() => {
    assert.throws(() => T.tensor([1, 2, 3], [2, 2]), /tensor: 3 values do not fill shape \[2,2\]/);
    assert.throws(() => T.zeros([2, -1]), /zeros: invalid shape/);
    assert.throws(() => T.reshape(T.zeros([6]), [4, 2]), /reshape: shape \[4,2\] does not match 6/);
    assert.throws(() => T.narrow(T.zeros([4]), 0, 3, 2), /narrow: \[3, 5\) out of range/);
    assert.throws(() => T.permute(T.zeros([2, 2]), [0, 0]), /permute: repeated dims/);
    assert.throws(() => T.cat([T.zeros([2, 2]), T.zeros([2, 3])], 0), /cat: shape \[2,3\] does not match/);
    assert.throws(() => T.expand(T.zeros([2]), [3]), /expand: cannot expand/);
    assert.throws(() => T.empty([2], 'float8' as never), /unknown dtype/);
  });
});

test('use after dispose throws; double dispose is safe', () => {
  const t = T.ones([4]);
  const v = T.reshape(t, [2, 2]);
  t.dispose();
  assert.deepEqual(v.toArray(), [1, 1, 1, 1]); // the view still holds the storage
  v.dispose();
  v.dispose();
  assert.throws(() => t.toArray(), /used after dispose/);
});

test('native kernels bounds-check views against their storage', () => {
  const s = T.zeros([4]);
  const bad = s.viewAs([4], [2]); // reaches element 6 of a 4-element storage
  assert.throws(() => T.contiguousCopy(bad), /copyStrided: source view reaches element 6/);
  bad.dispose();
  s.dispose();
  assert.throws(() => (T.native as unknown as { cast: (...a: unknown[]) => void }).cast(new Uint8Array(4), 0, new Uint8Array(4), 1, 1), /cast: argument 'dst' needs 8/);
});

test('tidy disposes intermediates, keeps results, nests', () => {
  const before = T.nativeMemory().blocks;
  const kept = T.tidy(() => {
    T.ones([100]);
    const inner = T.tidy(() => {
      T.zeros([10]);
      return { a: T.ones([3]), list: [T.ones([2])] };
    });
    assert.equal(inner.a.isDisposed, false);
    return inner.a;
  });
  assert.equal(kept.isDisposed, false);
  assert.equal(T.nativeMemory().blocks, before + 1);
  kept.dispose();
  assert.equal(T.nativeMemory().blocks, before);
  assert.throws(() => T.tidy(() => { T.ones([5]); throw new Error('boom'); }), /boom/);
  assert.equal(T.nativeMemory().blocks, before);
});

test('memory is returned at dispose, not at GC', () => {
  const before = T.nativeMemory().bytes;
  const big = T.zeros([1 << 20]);
  assert.ok(T.nativeMemory().bytes >= before + 4 * (1 << 20));
  big.dispose();
  assert.equal(T.nativeMemory().bytes, before);
});

test('multi-threaded copy and cast equal single-threaded', () => {
  const x = T.randn([257, 300], { seed: 3 });
  const pt = T.permute(x, [1, 0]);
  T.setNumThreads(1);
  const a = T.contiguous(pt).toArray();
  const ab = T.cast(x, 'bfloat16').toArray();
  T.setNumThreads(2);
  const b = T.contiguous(pt).toArray();
  const bb = T.cast(x, 'bfloat16').toArray();
  assert.deepEqual(a, b);
  assert.deepEqual(ab, bb);
  x.dispose();
  pt.dispose();
});

test('random tensors are reproducible from a seed, independent of threads', () => {
  T.setNumThreads(1);
  const a = T.randn([1000], { seed: 42 }).toArray();
  T.setNumThreads(2);
  const b = T.randn([1000], { seed: 42 }).toArray();
  assert.deepEqual(a, b);
  const mean = a.reduce((s, v) => s + v, 0) / a.length;
  const variance = a.reduce((s, v) => s + (v - mean) ** 2, 0) / a.length;
  assert.ok(Math.abs(mean) < 0.1 && Math.abs(variance - 1) < 0.15, `mean ${mean} var ${variance}`);
  const u = T.rand([1000], { seed: 1 }).toArray();
  assert.ok(u.every((v) => v > 0 && v < 1));
});

test('thread pool: jobs of different chunk counts back to back run every chunk exactly once', () => {
  // accumulate is not idempotent: a chunk run twice (or skipped) changes the sum.
  T.setNumThreads(2);
  const big = T.zeros([600_000]);
  const small = T.zeros([70_000]);
  const oneBig = T.ones([600_000]);
  const oneSmall = T.ones([70_000]);
  const rounds = 1500;
  for (let i = 0; i < rounds; i++) {
    T.accumulateInto(big, oneBig); // 8 chunks
    T.accumulateInto(small, oneSmall); // 2 chunks
  }
  for (const [t, n] of [[big, 600_000], [small, 70_000]] as const) {
    const d = t.data<Float32Array>();
    let bad = 0;
    for (let k = 0; k < n; k++) if (d[k] !== rounds) bad++;
    assert.equal(bad, 0, `${bad} of ${n} elements differ from ${rounds}`);
  }
  for (const t of [big, small, oneBig, oneSmall]) t.dispose();
});
