import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as T from '../../src/tensor/index.ts';
import { embedding, indexSelect, indexAdd, gather, scatterAdd, topk, moeRoute } from '../../src/tensor/ops/indexing.ts';
import { gradcheck, randomTensor, randomArray, rng } from '../helpers/gradcheck.ts';

const { tidy, tensor } = T;

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length, `length ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}
function assertClose(a: ArrayLike<number>, b: ArrayLike<number>, tol: number, what: string): void {
  const d = maxAbsDiff(a, b);
  assert.ok(d <= tol, `${what}: max abs diff ${d} > ${tol}`);
}
function randomInts(n: number, bound: number, seed: number): number[] {
  const r = rng(seed);
  return Array.from({ length: n }, () => Math.floor(r() * bound));
}
function strides(shape: number[]): number[] {
  const s = shape.map(() => 1);
  for (let i = shape.length - 2; i >= 0; i--) s[i] = s[i + 1] * shape[i + 1];
  return s;
}
/** Every multi-index of a shape, in row-major order. */
function* coords(shape: number[]): Generator<number[]> {
  const n = shape.reduce((a, b) => a * b, 1);
  const st = strides(shape);
  for (let i = 0; i < n; i++) yield shape.map((d, k) => Math.floor(i / st[k]) % d);
}
const flat = (c: number[], shape: number[]): number => c.reduce((a, v, k) => a + v * strides(shape)[k], 0);

test('embedding: f32 / f64 / bf16 / f16 weights, ids of any shape and index type', () => {
  tidy(() => {
    const V = 7, D = 5;
    const wv = randomArray(V * D, 1);
    const ids = [3, 0, 6, 3, 1, 2];
    const ref = ids.flatMap((i) => Array.from(wv.slice(i * D, i * D + D)));
    for (const dt of ['float32', 'float64', 'bfloat16', 'float16'] as const) {
      const w = tensor(wv, [V, D], dt);
      const wRounded = w.toArray();
      const refDt = ids.flatMap((i) => wRounded.slice(i * D, i * D + D));
      const out = embedding(w, tensor(Int32Array.from(ids), [2, 3]));
      assert.deepEqual(out.shape, [2, 3, D]);
      assert.equal(out.dtype, dt === 'float64' ? 'float64' : 'float32');
      assert.deepEqual(out.toArray(), refDt, `embedding ${dt}`);
      if (dt === 'float64') assert.deepEqual(out.toArray(), ref);
    }
    const w = tensor(wv, [V, D]);
    const viaI64 = embedding(w, tensor(ids, [6], 'int64')).toArray();
    assert.deepEqual(viaI64, embedding(w, Int32Array.from(ids)).toArray());
    assert.deepEqual(viaI64, embedding(w, ids).toArray());
    // a transposed (non-contiguous) weight view
    const wt = T.transpose(tensor(wv, [D, V]), 0, 1);
    const wtRows = T.contiguous(wt).toArray();
    assert.deepEqual(embedding(wt, ids).toArray(), ids.flatMap((i) => wtRows.slice(i * D, i * D + D)));
  });
});

test('embedding gradient: rows index-added (repeated ids accumulate)', () => {
  tidy(() => {
    const w = randomTensor([6, 4], 2);
    gradcheck((x) => embedding(x, tensor(Int32Array.from([1, 5, 1, 0, 1, 3]), [3, 2])), [w]);
    // bf16 weights get a float32 gradient of their shape
    const wb = T.cast(randomTensor([6, 4], 3, 'float32'), 'bfloat16');
    wb.requiresGrad = true;
    const out = embedding(wb, [2, 2, 5]);
    T.backward(out, { grad: T.ones([3, 4]) });
    assert.equal(wb.grad!.dtype, 'float32');
    const g = wb.grad!.toArray();
    assert.deepEqual(g.slice(8, 12), [2, 2, 2, 2]);
    assert.deepEqual(g.slice(20, 24), [1, 1, 1, 1]);
    assert.equal(g.reduce((a, b) => a + b, 0), 12);
  });
});

test('indexSelect: every dim, element sizes 1/2/4/8, non-contiguous input', () => {
  tidy(() => {
    const shape = [3, 4, 5];
    const xv = randomArray(60, 4);
    for (const dt of ['float32', 'float64', 'bfloat16', 'int32', 'uint8'] as const) {
      const x = tensor(dt === 'uint8' || dt === 'int32' ? xv.map((v) => Math.round((v + 1) * 100)) : xv, shape, dt);
      const xa = x.toArray();
      for (let d = 0; d < 3; d++) {
        const idx = randomInts(6, shape[d], 10 + d);
        const out = indexSelect(x, d, idx);
        const oshape = [...shape];
        oshape[d] = idx.length;
        assert.deepEqual(out.shape, oshape);
        const ref = [...coords(oshape)].map((c) => {
          const src = [...c];
          src[d] = idx[c[d]];
          return xa[flat(src, shape)];
        });
        assert.deepEqual(out.toArray(), ref, `indexSelect ${dt} dim ${d}`);
      }
    }
    const x = tensor(xv, shape);
    const xp = T.permute(x, [2, 0, 1]);
    assert.deepEqual(indexSelect(xp, 0, [4, 1]).toArray(), T.contiguous(T.permute(indexSelect(x, 2, [4, 1]), [2, 0, 1])).toArray());
    assert.deepEqual(indexSelect(x, -1, []).shape, [3, 4, 0]);
  });
});

test('indexAdd forward with many sources per row (the MoE combine path): k order, any thread count, rows without sources kept', () => {
  const prev = T.numThreads();
  try {
    for (const dtype of ['float64', 'float32'] as const) {
      tidy(() => {
        const size = 7, n = 40, inner = 37;
        const r = rng(77);
        const idx = Array.from({ length: n }, () => Math.floor(r() * (size - 1)));  // row 6 gets nothing
        const base = randomTensor([size, inner], 8, dtype);
        const src = randomTensor([n, inner], 9, dtype);
        const ref = base.toArray();
        const s = src.toArray();
        const f = dtype === 'float32' ? Math.fround : (v: number) => v;
        idx.forEach((row, k) => { for (let c = 0; c < inner; c++) ref[row * inner + c] = f(ref[row * inner + c] + s[k * inner + c]); });
        const outs = [1, 2].map((t) => { T.setNumThreads(t); return indexAdd(base, 0, idx, src).toArray(); });
        assert.deepEqual(outs[0], ref, `${dtype}: sums in k order`);
        assert.deepEqual(outs[1], outs[0], `${dtype}: 2 threads equal 1`);
      });
    }
  } finally {
    T.setNumThreads(prev);
  }
});

test('indexSelect and indexAdd gradients (adjoint pair)', () => {
  tidy(() => {
    for (let d = 0; d < 3; d++) {
      const x = randomTensor([3, 4, 5], 20 + d);
      const idx = Int32Array.from([1, 0, 2, 1, 2, 2].map((v) => v % [3, 4, 5][d]));
      gradcheck((a) => indexSelect(a, d, idx), [x]);
      const srcShape = [3, 4, 5];
      srcShape[d] = idx.length;
      gradcheck((b, s) => indexAdd(b, d, idx, s), [randomTensor([3, 4, 5], 30 + d), randomTensor(srcShape, 40 + d)]);
    }
  });
});

test('indexAdd forward: repeated indices accumulate onto the base', () => {
  tidy(() => {
    const base = randomTensor([5, 3], 5);
    const src = randomTensor([4, 3], 6);
    const idx = [4, 0, 4, 2];
    const out = indexAdd(base, 0, idx, src).toArray();
    const ref = base.toArray();
    const s = src.toArray();
    idx.forEach((r, k) => { for (let c = 0; c < 3; c++) ref[r * 3 + c] += s[k * 3 + c]; });
    assertClose(out, ref, 1e-15, 'indexAdd');
    // base is unchanged (out of place)
    assert.notDeepEqual(base.toArray(), out);
  });
});

test('gather: torch semantics incl. smaller index extents; gradient', () => {
  tidy(() => {
    const shape = [3, 4, 5];
    const x = randomTensor(shape, 7);
    const xa = x.toArray();
    for (let d = 0; d < 3; d++) {
      const ishape = [2, 3, 4];
      const iv = randomInts(24, shape[d], 50 + d);
      const idx = tensor(Int32Array.from(iv), ishape);
      const out = gather(x, d, idx);
      assert.deepEqual(out.shape, ishape);
      const ref = [...coords(ishape)].map((c, i) => {
        const src = [...c];
        src[d] = iv[i];
        return xa[flat(src, shape)];
      });
      assert.deepEqual(out.toArray(), ref, `gather dim ${d}`);
      gradcheck((a) => gather(a, d, idx), [randomTensor(shape, 60 + d)]);
    }
    // int64 index tensor
    const i64 = tensor([0, 2, 1, 1], [1, 4], 'int64');
    assert.deepEqual(gather(tensor([10, 11, 12], [1, 3]), 1, i64).toArray(), [10, 12, 11, 11]);
  });
});

test('scatterAdd: forward vs reference and gradient', () => {
  tidy(() => {
    const base = randomTensor([4, 3], 8);
    const src = randomTensor([6, 3], 9);
    const iv = randomInts(18, 4, 70);
    const idx = tensor(Int32Array.from(iv), [6, 3]);
    const ref = base.toArray();
    const s = src.toArray();
    iv.forEach((r, i) => { ref[r * 3 + (i % 3)] += s[i]; });
    assertClose(scatterAdd(base, 0, idx, src).toArray(), ref, 1e-15, 'scatterAdd');
    gradcheck((b, x) => scatterAdd(b, 0, idx, x), [randomTensor([4, 3], 10), randomTensor([6, 3], 11)]);
    const idx1 = tensor(Int32Array.from(randomInts(12, 3, 71)), [4, 3]);
    gradcheck((b, x) => scatterAdd(b, 1, idx1, x), [randomTensor([4, 3], 12), randomTensor([4, 3], 13)]);
  });
});

/** Reference top-k of one row: NaN first, then descending, ties by lower index. */
function refTopk(row: number[], k: number): { v: number[]; i: number[] } {
  const order = row.map((_, i) => i).sort((a, b) => {
    const na = Number.isNaN(row[a]), nb = Number.isNaN(row[b]);
    if (na || nb) return na && nb ? a - b : na ? -1 : 1;
    return row[a] !== row[b] ? row[b] - row[a] : a - b;
  });
  return { v: order.slice(0, k).map((i) => row[i]), i: order.slice(0, k) };
}

test('topk: sorted descending, ties to lower index, NaN first; heap and sort paths', () => {
  tidy(() => {
    // k <= 16: sorted insertion; 8k <= L: heap; otherwise partial sort
    for (const [rows, L, k] of [[5, 200, 3], [4, 9, 7], [3, 16, 16], [2, 1000, 1], [3, 5, 0], [2, 400, 40], [3, 60, 30], [2, 33, 33]]) {
      // quantised values so that ties are frequent
      const xv = randomArray(rows * L, rows * L + k).map((v) => Math.round(v * 8) / 8);
      if (L > 100) xv[7] = NaN;
      if (L === 400) xv[rows * L - 1] = NaN;
      if (L === 60) xv[5] = NaN;
      for (const dt of ['float32', 'float64'] as const) {
        const x = tensor(xv, [rows, L], dt);
        const { values, indices } = topk(x, k);
        assert.equal(indices.dtype, 'int32');
        assert.deepEqual(values.shape, [rows, k]);
        const va = values.toArray(), ia = indices.toArray();
        for (let r = 0; r < rows; r++) {
          const ref = refTopk(Array.from(xv.slice(r * L, r * L + L)), k);
          assert.deepEqual(ia.slice(r * k, r * k + k), ref.i, `topk ${dt} [${rows},${L}] k=${k} row ${r} indices`);
          assert.deepEqual(va.slice(r * k, r * k + k), ref.v, `topk ${dt} row ${r} values`);
        }
      }
    }
  });
});

test('topk over a non-last dim, and its gradient', () => {
  tidy(() => {
    const x = randomTensor([6, 4], 14);
    const a = x.toArray();
    const { values, indices } = topk(x, 2, 0);
    assert.deepEqual(values.shape, [2, 4]);
    for (let c = 0; c < 4; c++) {
      const ref = refTopk([0, 1, 2, 3, 4, 5].map((r) => a[r * 4 + c]), 2);
      assert.deepEqual([indices.toArray()[c], indices.toArray()[4 + c]], ref.i);
    }
    gradcheck((t) => topk(t, 3).values, [randomTensor([4, 7], 15)]);
    gradcheck((t) => topk(t, 2, 0).values, [randomTensor([5, 3], 16)]);
  });
});

test('moeRoute: counting sort by expert; gather per expert + scatter back reproduces the tokens', () => {
  tidy(() => {
    const Tn = 9, k = 2, E = 5;
    // distinct experts per token, as top-k produces
    const r = rng(77);
    const ids: number[] = [];
    for (let t = 0; t < Tn; t++) {
      const a = Math.floor(r() * E);
      ids.push(a, (a + 1 + Math.floor(r() * (E - 1))) % E);
    }
    const route = moeRoute(tensor(Int32Array.from(ids), [Tn, k]), E);
    const refOrder = ids.map((e, s) => [e, s]).sort((p, q) => p[0] - q[0] || p[1] - q[1]).map((p) => p[1]);
    assert.deepEqual(Array.from(route.order), refOrder);
    assert.deepEqual(Array.from(route.tokens), refOrder.map((s) => Math.floor(s / k)));
    assert.deepEqual(route.counts, [...Array(E).keys()].map((e) => ids.filter((v) => v === e).length));
    assert.equal(route.offsets[E], Tn * k);
    assert.deepEqual(moeRoute(Int32Array.from(ids), E, k).order, route.order);
    // one-pass dispatch/combine; expert e permutes the 3 features by perms[e]
    const perms = [[0, 1, 2], [2, 0, 1], [1, 2, 0], [2, 1, 0], [0, 2, 1]];
    const moe = (x: T.Tensor): T.Tensor => {
      const rows = indexSelect(x, 0, route.tokens);
      const ys = perms.map((p, e) => indexSelect(T.narrow(rows, 0, route.offsets[e], route.counts[e]), 1, p));
      return indexAdd(T.zeros([Tn, 3], x.dtype), 0, route.tokens, T.cat(ys, 0));
    };
    const x = randomTensor([Tn, 3], 17);
    const xa = x.toArray();
    const ref = new Array(Tn * 3).fill(0);
    ids.forEach((e, s) => {
      const t = Math.floor(s / k);
      for (let c = 0; c < 3; c++) ref[t * 3 + c] += xa[t * 3 + perms[e][c]];
    });
    assertClose(moe(x).toArray(), ref, 1e-15, 'moe dispatch/combine');
    gradcheck(moe, [x]);
  });
});

test('out-of-range indices raise errors naming op, position and value', () => {
  tidy(() => {
    const x = randomTensor([4, 3], 18);
    assert.throws(() => embedding(x, tensor(Int32Array.from([0, 4]), [2])), /embedding: index 4 at position 1 of 'ids' is out of range \[0, 4\)/);
    assert.throws(() => embedding(x, tensor(Int32Array.from([-1]), [1])), /embedding: index -1 at position 0/);
    assert.throws(() => embedding(x, [0, 1, 9]), /embedding: index 9 at position 2/);
    assert.throws(() => embedding(x, tensor([0, 2 ** 33], [2], 'int64')), /embedding: index 8589934592 at position 1/);
    assert.throws(() => indexSelect(x, 1, Int32Array.from([2, 3])), /indexSelect: index 3 at position 1 of 'idx' is out of range \[0, 3\)/);
    assert.throws(() => indexAdd(x, 0, Int32Array.from([5]), randomTensor([1, 3], 1)), /indexAdd: index 5 at position 0/);
    assert.throws(() => gather(x, 0, tensor(Int32Array.from([0, 1, 2, 3, 4, 0]), [2, 3])), /gather: index 4 at position 4/);
    assert.throws(() => scatterAdd(x, 1, tensor(Int32Array.from([0, -3, 0]), [1, 3]), randomTensor([1, 3], 2)), /scatterAdd/);
    assert.throws(() => moeRoute(Int32Array.from([0, 5]), 5, 2), /moeRoute: index 5 at position 1 of 'expertIds'/);
    assert.throws(() => moeRoute(Int32Array.from([0, 1, 2]), 5, 2), /moeRoute: 3 expert ids is not a multiple of topK = 2/);
    // the raw kernels check too (callers that bypass the TS checks cannot crash)
    const N = T.native as unknown as Record<string, (...a: unknown[]) => void>;
    assert.throws(() => N.indexSelect(new Uint8Array(12), 1, 3, 1, 4, Int32Array.from([1, 7]), 2, new Uint8Array(8)), /indexSelect: index 7/);
    assert.throws(() => N.indexSelect(new Uint8Array(12), 1, 3, 1, 4, Int32Array.from([1]), 2, new Uint8Array(8)), /indexSelect: argument 'idx' needs 2/);
    assert.throws(() => N.indexSelect(new Uint8Array(12), 1, 3, 1, 4, Int32Array.from([1, 2]), 2, new Uint8Array(4)), /indexSelect: argument 'out' needs 8/);
    assert.throws(() => N.scatterAdd(new Float32Array(4), 1, 4, 1, Int32Array.from([0, 9]), 2, new Float32Array(2)), /scatterAdd: index 9 at position 1/);
    assert.throws(() => N.topk(new Float32Array(4), 1, 4, 5, new Float32Array(5), new Int32Array(5)), /topk: k = 5/);
  });
});

test('bad shapes, dims and dtypes name the op', () => {
  tidy(() => {
    const x = randomTensor([4, 3], 19);
    assert.throws(() => embedding(T.zeros([4]), [0]), /embedding: weight must be \[V, D\]/);
    assert.throws(() => embedding(T.zeros([4, 2], 'int32'), [0]), /embedding: weight must be float32/);
    assert.throws(() => indexSelect(x, 2, [0]), /indexSelect: dim 2 out of range/);
    assert.throws(() => indexSelect(x, 0, tensor(Int32Array.from([0, 1]), [1, 2])), /indexSelect: index must be 1-D/);
    assert.throws(() => indexSelect(x, 0, tensor([0], [1], 'float32')), /indexSelect: idx must be an int32 or int64 tensor/);
    assert.throws(() => indexAdd(x, 0, [0, 1], randomTensor([3, 3], 1)), /indexAdd: base \[4,3\], dim 0, index \[2\]/);
    assert.throws(() => indexAdd(x, 0, [0], randomTensor([1, 3], 1, 'float32')), /indexAdd: src dtype float32 differs/);
    assert.throws(() => gather(x, 0, tensor(Int32Array.from([0]), [1])), /gather: index \[1\] must have the rank of x \[4,3\]/);
    assert.throws(() => topk(x, 4), /topk: k = 4 must be in \[0, 3\]/);
    assert.throws(() => topk(T.zeros([3], 'int32'), 1), /topk: x must be float32 or float64/);
    assert.throws(() => moeRoute(Int32Array.from([0]), 0, 1), /moeRoute: numExperts must be a positive integer/);
  });
});

test('results do not depend on the thread count', () => {
  const run = (): number[][] =>
    tidy(() => {
      const V = 300, D = 200;
      const w = randomTensor([V, D], 21, 'float32');
      w.requiresGrad = true;
      const ids = tensor(Int32Array.from(randomInts(3000, 40, 22)), [3000]); // many repeats
      const e = embedding(w, ids);
      T.backward(e, { grad: randomTensor([3000, D], 23, 'float32') });
      const gw = w.grad!.toArray();
      w.grad!.dispose();
      const x = randomTensor([64, 2000], 24, 'float32');
      const gi = tensor(Int32Array.from(randomInts(64 * 2000, 64, 25)), [64, 2000]);
      const sa = scatterAdd(T.zeros([64, 2000]), 0, gi, x).toArray();
      const tk = topk(x, 5);
      return [gw, sa, tk.values.toArray(), tk.indices.toArray(), indexSelect(x, 1, randomInts(500, 2000, 26)).toArray()];
    });
  const prev = T.numThreads();
  try {
    T.setNumThreads(1);
    const one = run();
    T.setNumThreads(2);
    const two = run();
    one.forEach((a, i) => assert.equal(maxAbsDiff(a, two[i]), 0, `result ${i} differs between 1 and 2 threads`));
  } finally {
    T.setNumThreads(prev);
  }
});

test('no native memory is leaked by forward + backward of the indexing ops', () => {
  const before = T.nativeMemory().bytes;
  tidy(() => {
    const x = randomTensor([8, 6], 31, 'float32');
    x.requiresGrad = true;
    const outs = [
      embedding(x, tensor([1, 2, 3], [3], 'int64')),
      indexSelect(x, 1, [0, 5]),
      indexAdd(x, 0, [1], randomTensor([1, 6], 32, 'float32')),
      gather(x, 1, tensor(Int32Array.from([0, 1, 2, 3]), [2, 2])),
      scatterAdd(x, 0, tensor(Int32Array.from([0, 1, 2, 3, 4, 5]), [1, 6]), randomTensor([1, 6], 33, 'float32')),
      topk(x, 2, 0).values,
      topk(x, 2).values,
    ];
    for (const y of outs) T.backward(y, { grad: T.onesLike(y) });
    moeRoute(tensor(Int32Array.from([0, 1, 1, 2]), [2, 2]), 3);
  });
  assert.equal(T.nativeMemory().bytes, before);
});
