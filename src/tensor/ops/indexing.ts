/**
 * Indexing ops: embedding lookup, row gather/scatter (indexSelect/indexAdd,
 * the MoE "gather tokens per expert" / "scatter back"), element gather /
 * scatter-add (torch.gather semantics), top-k, and the MoE routing helper.
 *
 * Indices are int32 (int64 tensors are converted, with a range check);
 * every index is bounds-checked in native code before memory is touched,
 * and an out-of-range index raises an Error naming the op, the position
 * and the value. Differentiable ops work in float32 and float64.
 */
import { Tensor, type Shape, empty, zeros, tensor, contiguousCopy, numelOf, DTYPE_CODE, elementBytes } from '../tensor.ts';
import { tidy } from '../scope.ts';
import { record } from '../autograd.ts';
import { kernels } from '../native.ts';
import { bytesOf } from '../dtype.ts';
import { normDim, narrow, contiguous, transpose } from './view.ts';

type F = Float32Array | Float64Array;
interface IndexKernels {
  indicesToInt32(src: BigInt64Array, dst: Int32Array, n: number, bound: number, op: string, what: string): void;
  indexSelect(x: Uint8Array, outer: number, size: number, inner: number, eb: number, idx: Int32Array, n: number, out: Uint8Array): void;
  indexAdd(dst: F, outer: number, size: number, inner: number, idx: Int32Array, n: number, src: F): void;
  embedding(w: Uint8Array, dtype: number, V: number, D: number, ids: Int32Array, n: number, out: F): void;
  gather(x: Uint8Array, outer: number, size: number, inner: number, eb: number, idx: Int32Array, n: number, out: Uint8Array): void;
  scatterAdd(dst: F, outer: number, size: number, inner: number, idx: Int32Array, n: number, src: F): void;
  topk(x: F, rows: number, L: number, k: number, values: F, indices: Int32Array): void;
  moeRoute(ids: Int32Array, n: number, k: number, E: number, order: Int32Array, tokens: Int32Array, offsets: Int32Array): void;
}
const K = kernels<IndexKernels>(['indicesToInt32', 'indexSelect', 'indexAdd', 'embedding', 'gather', 'scatterAdd', 'topk', 'moeRoute']);

/** Indices: an int32/int64 tensor, an Int32Array, or a plain array of integers. */
export type IndexLike = Tensor | Int32Array | readonly number[];

// ------------------------------------------------------------------ helpers

/** [outer, size, inner] around dim d. */
function split3(shape: Shape, d: number): [number, number, number] {
  return [numelOf(shape.slice(0, d)), shape[d], numelOf(shape.slice(d + 1))];
}

function requireFloat(t: Tensor, op: string, what: string): void {
  if (t.dtype !== 'float32' && t.dtype !== 'float64') {
    throw new TypeError(`${op}: ${what} must be float32 or float64, got ${t.dtype} [${t.shape}]`);
  }
}

/** Runs fn on a contiguous version of t (a temporary copy if needed). */
function withContiguous<R>(t: Tensor, fn: (c: Tensor) => R): R {
  if (t.isContiguous) return fn(t);
  const c = contiguousCopy(t);
  try {
    return fn(c);
  } finally {
    c.dispose();
  }
}

/**
 * A contiguous int32 tensor holding the indices (always a new tensor object that
 * the caller disposes). int64 values outside [0, bound) are rejected here (they
 * could not be represented in int32); int32 values are checked by the kernels.
 */
function indexTensor(idx: IndexLike, op: string, bound: number, what = 'idx'): Tensor {
  if (idx instanceof Tensor) {
    if (idx.dtype === 'int32') return idx.isContiguous ? idx.viewAs(idx.shape, idx.strides) : contiguousCopy(idx);
    if (idx.dtype === 'int64') {
      const out = empty(idx.shape, 'int32');
      try {
        withContiguous(idx, (c) => K.indicesToInt32(c.data<BigInt64Array>(), out.data<Int32Array>(), c.size, bound, op, what));
      } catch (e) {
        out.dispose();
        throw e;
      }
      return out;
    }
    throw new TypeError(`${op}: ${what} must be an int32 or int64 tensor, got ${idx.dtype} [${idx.shape}]`);
  }
  if (idx instanceof Int32Array) return tensor(idx, [idx.length], 'int32');
  if (!Array.isArray(idx)) throw new TypeError(`${op}: ${what} must be a tensor, an Int32Array or an array of integers`);
  const a = new Int32Array(idx.length);
  for (let i = 0; i < idx.length; i++) {
    const v = idx[i];
    if (!Number.isInteger(v) || v < 0 || v >= bound || v > 0x7fffffff) {
      throw new RangeError(`${op}: index ${v} at position ${i} of '${what}' is out of range [0, ${bound})`);
    }
    a[i] = v;
  }
  return tensor(a, [a.length], 'int32');
}

function withIndex<R>(idx: IndexLike, op: string, bound: number, fn: (t: Tensor) => R, what = 'idx'): R {
  const t = indexTensor(idx, op, bound, what);
  try {
    return fn(t);
  } finally {
    t.dispose();
  }
}

// Raw kernels on tensors (no autograd): used by the ops and their gradient rules.

function selectRows(x: Tensor, d: number, idx: Tensor): Tensor {
  const [outer, size, inner] = split3(x.shape, d);
  const shape = [...x.shape];
  shape[d] = idx.size;
  const out = empty(shape, x.dtype);
  withContiguous(x, (xc) =>
    K.indexSelect(elementBytes(xc), outer, size, inner, bytesOf(x.dtype), idx.data<Int32Array>(), idx.size, elementBytes(out)),
  );
  return out;
}

/** dst[.., idx[k], ..] += src[.., k, ..] in place (dst contiguous). */
function addRowsInto(dst: Tensor, d: number, idx: Tensor, src: Tensor): void {
  const [outer, size, inner] = split3(dst.shape, d);
  withContiguous(src, (sc) => K.indexAdd(dst.data<F>(), outer, size, inner, idx.data<Int32Array>(), idx.size, sc.data<F>()));
}

function gatherRaw(x: Tensor, d: number, idx: Tensor): Tensor {
  const [outer, size, inner] = split3(x.shape, d);
  const out = empty(idx.shape, x.dtype);
  withContiguous(x, (xc) =>
    K.gather(elementBytes(xc), outer, size, inner, bytesOf(x.dtype), idx.data<Int32Array>(), idx.shape[d], elementBytes(out)),
  );
  return out;
}

/** dst[.., idx[.., j, ..], ..] += src[.., j, ..] in place (dst contiguous; idx and src share a shape). */
function scatterAddInto(dst: Tensor, d: number, idx: Tensor, src: Tensor): void {
  const [outer, size, inner] = split3(dst.shape, d);
  withContiguous(src, (sc) => K.scatterAdd(dst.data<F>(), outer, size, inner, idx.data<Int32Array>(), idx.shape[d], sc.data<F>()));
}

function sameShape(a: Shape, b: Shape): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

// ---------------------------------------------------------------------- ops

/**
 * Embedding lookup: weight [V, D] (float32, float64, bfloat16 or float16), ids of any shape
 * → [...ids.shape, D] (float64 for float64 weights, else float32). Gradient: the rows of
 * the output gradient index-added into a zero [V, D] (float32 for bf16/f16 weights).
 */
export function embedding(weight: Tensor, ids: IndexLike): Tensor {
  const op = 'embedding';
  if (weight.ndim !== 2) throw new RangeError(`${op}: weight must be [V, D], got [${weight.shape}]`);
  if (!['float32', 'float64', 'bfloat16', 'float16'].includes(weight.dtype)) {
    throw new TypeError(`${op}: weight must be float32, float64, bfloat16 or float16, got ${weight.dtype}`);
  }
  const [V, D] = weight.shape;
  const outDtype = weight.dtype === 'float64' ? 'float64' : 'float32';
  return withIndex(ids, op, V, (it) => {
    const out = empty([...it.shape, D], outDtype);
    withContiguous(weight, (wc) =>
      K.embedding(elementBytes(wc), DTYPE_CODE[weight.dtype], V, D, it.data<Int32Array>(), it.size, out.data<F>()),
    );
    return record(
      op,
      out,
      [weight],
      (g, [ids]) => {
        const gw = zeros([V, D], g.dtype);
        withContiguous(g, (gc) => K.indexAdd(gw.data<F>(), 1, V, D, ids.data<Int32Array>(), ids.size, gc.data<F>()));
        return [gw];
      },
      [it],
    );
  }, 'ids');
}

/** Rows of x along `dim` picked by a 1-D index (repeats allowed): out.shape[dim] = index length. */
export function indexSelect(x: Tensor, dim: number, index: IndexLike): Tensor {
  const op = 'indexSelect';
  const d = normDim(dim, x.ndim, op);
  return withIndex(index, op, x.shape[d], (it) => {
    if (it.ndim !== 1) throw new RangeError(`${op}: index must be 1-D, got [${it.shape}]`);
    const out = selectRows(x, d, it);
    const xShape = x.shape;
    return record(
      op,
      out,
      [x],
      (g, [ids]) => {
        const gx = zeros(xShape, g.dtype);
        addRowsInto(gx, d, ids, g);
        return [gx];
      },
      [it],
    );
  });
}

/**
 * base + (src rows added at `index` along `dim`): out[.., index[k], ..] += src[.., k, ..]
 * (repeated indices accumulate). src.shape = base.shape with shape[dim] = index length.
 */
export function indexAdd(base: Tensor, dim: number, index: IndexLike, src: Tensor): Tensor {
  const op = 'indexAdd';
  const d = normDim(dim, base.ndim, op);
  requireFloat(base, op, 'base');
  if (src.dtype !== base.dtype) throw new TypeError(`${op}: src dtype ${src.dtype} differs from base dtype ${base.dtype}`);
  return withIndex(index, op, base.shape[d], (it) => {
    const want = [...base.shape];
    want[d] = it.size;
    if (it.ndim !== 1 || !sameShape(src.shape, want)) {
      throw new RangeError(`${op}: base [${base.shape}], dim ${d}, index [${it.shape}] need 1-D index and src [${want}], got src [${src.shape}]`);
    }
    const out = contiguousCopy(base);
    addRowsInto(out, d, it, src);
    return record(op, out, [base, src], (g, [ids]) => [g, selectRows(g, d, ids)], [it]);
  });
}

/**
 * torch.gather: out[i][j][k] = x[i][index[i][j][k]][k] (for dim = 1). index has x's rank
 * and index.shape[k] <= x.shape[k] for k != dim; out has index's shape.
 */
export function gather(x: Tensor, dim: number, index: Tensor): Tensor {
  const op = 'gather';
  const d = normDim(dim, x.ndim, op);
  return withIndex(index, op, x.shape[d], (it) => {
    if (it.ndim !== x.ndim || it.shape.some((s, k) => k !== d && s > x.shape[k])) {
      throw new RangeError(`${op}: index [${it.shape}] must have the rank of x [${x.shape}] and no larger size outside dim ${d}`);
    }
    // Restrict x to the index's extent outside `dim` (views; their gradients pad back).
    let xs = x;
    for (let k = 0; k < x.ndim; k++) if (k !== d && it.shape[k] < x.shape[k]) xs = narrow(xs, k, 0, it.shape[k]);
    const out = gatherRaw(xs, d, it);
    const xsShape = xs.shape;
    const result = record(
      op,
      out,
      [xs],
      (g, [ids]) => {
        const gx = zeros(xsShape, g.dtype);
        scatterAddInto(gx, d, ids, g);
        return [gx];
      },
      [it],
    );
    if (xs !== x) xs.dispose();
    return result;
  });
}

/**
 * base + src scattered along `dim`: out[.., index[.., j, ..], ..] += src[.., j, ..] (torch.scatter_add
 * with index.shape = src.shape and equal to base.shape outside dim).
 */
export function scatterAdd(base: Tensor, dim: number, index: Tensor, src: Tensor): Tensor {
  const op = 'scatterAdd';
  const d = normDim(dim, base.ndim, op);
  requireFloat(base, op, 'base');
  if (src.dtype !== base.dtype) throw new TypeError(`${op}: src dtype ${src.dtype} differs from base dtype ${base.dtype}`);
  return withIndex(index, op, base.shape[d], (it) => {
    if (!sameShape(it.shape, src.shape) || it.ndim !== base.ndim || it.shape.some((s, k) => k !== d && s !== base.shape[k])) {
      throw new RangeError(`${op}: index [${it.shape}] must equal src [${src.shape}] and base [${base.shape}] outside dim ${d}`);
    }
    const out = contiguousCopy(base);
    scatterAddInto(out, d, it, src);
    return record(op, out, [base, src], (g, [ids]) => [g, withContiguous(g, (gc) => gatherRaw(gc, d, ids))], [it]);
  });
}

export interface TopK {
  /** The k largest values along the dim, sorted descending (differentiable). */
  values: Tensor;
  /** Their positions along the dim, int32; ties go to the lower index. */
  indices: Tensor;
}

/** The k largest entries along `dim` (default last); NaN ranks above every number (as torch). */
export function topk(x: Tensor, k: number, dim = -1): TopK {
  const op = 'topk';
  requireFloat(x, op, 'x');
  if (x.ndim === 0) throw new RangeError(`${op}: x must have at least one dim`);
  const d = normDim(dim, x.ndim, op);
  const L = x.shape[d];
  if (!Number.isInteger(k) || k < 0 || k > L) throw new RangeError(`${op}: k = ${k} must be in [0, ${L}] for dim ${d} of [${x.shape}]`);
  if (d !== x.ndim - 1) {
    // Move dim last, select, move back (the view ops carry the gradient).
    return tidy(() => {
      const r = topkLast(contiguous(transpose(x, d, -1)), k);
      return { values: contiguous(transpose(r.values, d, -1)), indices: contiguousCopy(transpose(r.indices, d, -1)) };
    });
  }
  return topkLast(x, k);
}

function topkLast(x: Tensor, k: number): TopK {
  const L = x.shape[x.ndim - 1];
  const rows = L === 0 ? 0 : x.size / L;
  const shape = [...x.shape.slice(0, -1), k];
  const values = empty(shape, x.dtype);
  const indices = empty(shape, 'int32');
  withContiguous(x, (xc) => K.topk(xc.data<F>(), rows, L, k, values.data<F>(), indices.data<Int32Array>()));
  const xShape = x.shape;
  record(
    'topk',
    values,
    [x],
    (g, [ids]) => {
      const gx = zeros(xShape, g.dtype);
      withContiguous(g, (gc) => K.scatterAdd(gx.data<F>(), rows, L, 1, ids.data<Int32Array>(), k, gc.data<F>()));
      return [gx];
    },
    [indices],
  );
  return { values, indices };
}

export interface MoeRouting {
  /** Routing slots (t·k + j) grouped by expert; ascending slot order within an expert. */
  order: Int32Array;
  /** The token of each entry of `order` (order[i] / k): the rows to gather for the experts. */
  tokens: Int32Array;
  /** Slots per expert. */
  counts: number[];
  /** Expert e's slots are order[offsets[e] .. offsets[e+1]); length numExperts + 1. */
  offsets: number[];
}

/**
 * MoE dispatch (no gradient): groups the top-k expert choices [T, k] by expert with a
 * counting sort. For a typed-array input give `topK` (the number of choices per token).
 *
 * One-pass recipe (every op differentiable):
 *   rows  = indexSelect(x [T, H], 0, tokens)                 // [T·k, H], grouped by expert
 *   gates = indexSelect(reshape(weights [T, k], [T·k]), 0, order)
 *   y_e   = expert_e(narrow(rows, 0, offsets[e], counts[e])) // each expert once, contiguous
 *   out   = indexAdd(zeros [T, H], 0, tokens, cat(y_e) · gates[:, None])
 * (a single indexAdd: calling it once per expert would copy the [T, H] base each time).
 */
export function moeRoute(expertIds: Tensor | Int32Array, numExperts: number, topK?: number): MoeRouting {
  const op = 'moeRoute';
  if (!Number.isInteger(numExperts) || numExperts < 1) throw new RangeError(`${op}: numExperts must be a positive integer, got ${numExperts}`);
  let k = topK;
  if (expertIds instanceof Tensor) {
    if (expertIds.ndim !== 2 && !(expertIds.ndim === 1 && k !== undefined)) {
      throw new RangeError(`${op}: expert ids must be [T, k] (or 1-D with topK given), got [${expertIds.shape}]`);
    }
    if (expertIds.ndim === 2) {
      if (k !== undefined && k !== expertIds.shape[1]) throw new RangeError(`${op}: topK ${k} differs from ids [${expertIds.shape}]`);
      k = expertIds.shape[1];
    }
  } else if (k === undefined) {
    throw new RangeError(`${op}: topK must be given for an Int32Array of expert ids`);
  }
  if (!Number.isInteger(k) || k! < 1) throw new RangeError(`${op}: topK must be a positive integer, got ${k}`);
  return withIndex(expertIds, op, numExperts, (it) => {
    const n = it.size;
    if (n % k! !== 0) throw new RangeError(`${op}: ${n} expert ids is not a multiple of topK = ${k}`);
    const order = new Int32Array(n);
    const tokens = new Int32Array(n);
    const off = new Int32Array(numExperts + 1);
    K.moeRoute(it.data<Int32Array>(), n, k!, numExperts, order, tokens, off);
    const offsets = Array.from(off);
    const counts = offsets.slice(1).map((v, e) => v - offsets[e]);
    return { order, tokens, counts, offsets };
  }, 'expertIds');
}
