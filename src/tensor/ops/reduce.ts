/**
 * Reductions over one or several dims (keepdim optional): sum, mean, max
 * (gradient to the first argmax), argmax, logsumexp, and `sumTo` (the
 * gradient of broadcasting, used by view.ts and the elementwise ops).
 *
 * The native kernels (native/src/reduce*.cc) see a contiguous [outer, R,
 * inner] view: reduced dims that are adjacent (ignoring size-1 dims) merge
 * into R in place; otherwise the input is first permuted so they come last.
 * Partial sums are combined in an order fixed by the shape, so results do
 * not depend on the thread count.
 */
import { Tensor, type Shape, empty, zeros, full, contiguousCopy, numelOf } from '../tensor.ts';
import { record, noGrad } from '../autograd.ts';
import { kernels } from '../native.ts';
import { reshape, expand, permute } from './view.ts';
import { assertFloat, binaryOp, unaryOp, mul, BIN, UN } from './elementwise.ts';

type FloatArray = Float32Array | Float64Array;

interface ReduceKernels {
  reduceSum(x: FloatArray, out: FloatArray, outer: number, R: number, inner: number, scale: number): void;
  reduceMax(x: FloatArray, out: FloatArray, idx: Int32Array, outer: number, R: number, inner: number): void;
  reduceMaxBackward(g: FloatArray, idx: Int32Array, gx: FloatArray, outer: number, R: number, inner: number): void;
  logsumexpRows(x: FloatArray, out: FloatArray, rows: number, R: number): void;
}
const K = kernels<ReduceKernels>(['reduceSum', 'reduceMax', 'reduceMaxBackward', 'logsumexpRows']);

/** Which dims to reduce: one, several, or (undefined) all. Negative dims count from the end. */
export type Dims = number | readonly number[] | undefined;

interface Plan {
  /** Contiguous source in kernel layout (x itself, a copy, or a permuted copy). */
  src: Tensor;
  outer: number;
  R: number;
  inner: number;
  /** x's shape with reduced dims set to 1, and the result shape honouring keepdim. */
  keepShape: number[];
  outShape: number[];
  /** When the input was permuted (reduced dims moved last): the permutation applied. */
  perm: number[] | null;
}

function normDims(op: string, x: Tensor, dims: Dims): number[] {
  const list = dims === undefined ? x.shape.map((_, i) => i) : typeof dims === 'number' ? [dims] : [...dims];
  const out = list.map((d) => {
    const n = d < 0 ? d + x.ndim : d;
    if (!Number.isInteger(n) || n < 0 || n >= x.ndim) throw new RangeError(`${op}: dim ${d} out of range for [${x.shape}]`);
    return n;
  });
  if (new Set(out).size !== out.length) throw new RangeError(`${op}: repeated dims [${list}] for [${x.shape}]`);
  return out.sort((a, b) => a - b);
}

/** Works out the [outer, R, inner] layout; the caller disposes plan.src if it is not x. */
function plan(op: string, x: Tensor, dims: Dims, keepdim: boolean): Plan {
  assertFloat(op, x);
  const red = normDims(op, x, dims);
  const isRed = x.shape.map((_, i) => red.includes(i));
  const keepShape = x.shape.map((s, i) => (isRed[i] ? 1 : s));
  const outShape = keepdim ? keepShape : x.shape.filter((_, i) => !isRed[i]);
  // Reduced dims of size > 1 must form one run, apart from size-1 dims between them.
  const big = red.filter((d) => x.shape[d] !== 1);
  const R = numelOf(red.map((d) => x.shape[d]));
  let adjacent = true;
  if (big.length > 0) {
    for (let d = big[0]; d <= big[big.length - 1]; d++) if (!isRed[d] && x.shape[d] !== 1) adjacent = false;
  }
  if (adjacent) {
    const first = big.length ? big[0] : x.ndim;
    const last = big.length ? big[big.length - 1] : x.ndim - 1;
    const src = x.isContiguous ? x : contiguousCopy(x);
    return { src, outer: numelOf(x.shape.slice(0, first)), R, inner: numelOf(x.shape.slice(last + 1)), keepShape, outShape, perm: null };
  }
  const perm = [...x.shape.map((_, i) => i).filter((i) => !isRed[i]), ...red];
  const view = x.viewAs(perm.map((d) => x.shape[d]), perm.map((d) => x.strides[d]));
  const src = contiguousCopy(view);
  view.dispose();
  return { src, outer: numelOf(x.shape.filter((_, i) => !isRed[i])), R, inner: 1, keepShape, outShape, perm };
}

function release(p: Plan, x: Tensor): void {
  if (p.src !== x) p.src.dispose();
}

/** g (shape keepShape or outShape) broadcast back to `shape`, as a contiguous tensor times `scale`. */
function broadcastBack(g: Tensor, keepShape: number[], shape: Shape, scale: number): Tensor {
  const view = expand(reshape(g, keepShape), shape);
  return unaryOp('sum', UN.mulScalar, view, scale);
}

function sumImpl(op: string, x: Tensor, dims: Dims, keepdim: boolean, mean: boolean): Tensor {
  const p = plan(op, x, dims, keepdim);
  const out = empty(p.outShape, x.dtype);
  const scale = mean ? 1 / p.R : 1;
  if (out.size > 0) K.reduceSum(p.src.data<FloatArray>(), out.data<FloatArray>(), p.outer, p.R, p.inner, scale);
  release(p, x);
  const { keepShape } = p;
  const inShape = x.shape;
  return record(op, out, [x], (g) => [broadcastBack(g, keepShape, inShape, scale)]);
}

/** Sum over `dims` (all if undefined). */
export function sum(x: Tensor, dims?: Dims, keepdim = false): Tensor {
  return sumImpl('sum', x, dims, keepdim, false);
}

/** Mean over `dims` (all if undefined); NaN for an empty reduction. */
export function mean(x: Tensor, dims?: Dims, keepdim = false): Tensor {
  return sumImpl('mean', x, dims, keepdim, true);
}

function maxImpl(op: string, x: Tensor, dims: Dims, keepdim: boolean): { values: Tensor; indices: Tensor; p: Plan } {
  const p = plan(op, x, dims, keepdim);
  if (p.R === 0 && p.outer * p.inner > 0) {
    release(p, x);
    throw new RangeError(`${op}: cannot reduce over an empty dimension ([${x.shape}], dims ${JSON.stringify(dims ?? 'all')})`);
  }
  const values = empty(p.outShape, x.dtype);
  const indices = empty(p.outShape, 'int32');
  if (values.size > 0) K.reduceMax(p.src.data<FloatArray>(), values.data<FloatArray>(), indices.data<Int32Array>(), p.outer, p.R, p.inner);
  return { values, indices, p };
}

/** Max over `dims` (all if undefined), NaN-propagating; the gradient goes to the first maximal element. */
export function max(x: Tensor, dims?: Dims, keepdim = false): Tensor {
  const { values, indices, p } = maxImpl('max', x, dims, keepdim);
  release(p, x);
  const { outer, R, inner, perm } = p;
  const srcShape = p.src.shape;
  const inShape = x.shape;
  const out = record('max', values, [x], (g, [idx]) => {
    const gc = g.isContiguous ? g : contiguousCopy(g);
    const gx = zeros(srcShape, g.dtype);
    K.reduceMaxBackward(gc.data<FloatArray>(), idx.data<Int32Array>(), gx.data<FloatArray>(), outer, R, inner);
    if (gc !== g) gc.dispose();
    if (!perm) return [reshape(gx, inShape)];
    const inverse = new Array<number>(perm.length);
    perm.forEach((d, i) => (inverse[d] = i));
    return [contiguousCopy(permute(gx, inverse))];
  }, [indices]);
  indices.dispose();
  return out;
}

/** Index (int32) of the first maximal element over `dim`, or over the flattened tensor if dim is undefined. */
export function argmax(x: Tensor, dim?: number, keepdim = false): Tensor {
  const { values, indices, p } = maxImpl('argmax', x, dim, keepdim);
  release(p, x);
  values.dispose();
  return indices;
}

const F32_MAX = 3.4028234663852886e38;

/** log(sum(exp(x))) over `dims`, computed stably (-inf for an empty reduction). */
export function logsumexp(x: Tensor, dims?: Dims, keepdim = false): Tensor {
  const p = plan('logsumexp', x, dims, keepdim);
  let out: Tensor;
  if (p.R === 0) out = full(p.outShape, -Infinity, x.dtype);
  else if (p.inner === 1) {
    out = empty(p.outShape, x.dtype);
    if (out.size > 0) K.logsumexpRows(p.src.data<FloatArray>(), out.data<FloatArray>(), p.outer, p.R);
  } else {
    // Reduced dims in the middle: m + log(sum(exp(x - m))), with m clamped finite so
    // all -inf (or +inf) slices give -inf (+inf) instead of NaN.
    out = noGrad(() => {
      const mx = max(x, dims, true);
      const m = unaryOp('logsumexp', UN.clamp, mx, -F32_MAX, F32_MAX);
      const e = binaryOp('logsumexp', BIN.expSub, x, m);
      const s = sum(e, dims, true);
      const ls = unaryOp('logsumexp', UN.log, s);
      const r = binaryOp('logsumexp', BIN.add, ls, m);
      const res = reshape(r, p.outShape); // a view of the contiguous r
      for (const t of [mx, m, e, s, ls, r]) t.dispose();
      return res;
    });
  }
  release(p, x);
  const { keepShape } = p;
  return record('logsumexp', out, [x], (g, [sx, so]) => {
    const soft = binaryOp('logsumexp', BIN.expSub, sx, reshape(so, keepShape));
    return [mul(soft, reshape(g, keepShape))];
  }, [x, out]);
}

/** Sums `g` over broadcast dimensions so that it has `shape` (the gradient of expand/broadcasting). */
export function sumTo(g: Tensor, shape: Shape): Tensor {
  if (numelOf(shape) === g.size && shape.length <= g.ndim) {
    const lead = g.ndim - shape.length;
    if (shape.every((s, i) => s === g.shape[i + lead])) return reshape(g, shape);
  }
  const lead = g.ndim - shape.length;
  if (lead < 0) throw new RangeError(`sumTo: cannot reduce [${g.shape}] to more dims [${shape}]`);
  const dims: number[] = [];
  for (let i = 0; i < g.ndim; i++) {
    if (i < lead) dims.push(i);
    else if (shape[i - lead] === 1 && g.shape[i] !== 1) dims.push(i);
    else if (shape[i - lead] !== g.shape[i]) throw new RangeError(`sumTo: [${g.shape}] does not broadcast from [${shape}]`);
  }
  const s = sum(g, dims, true);
  const out = reshape(s, shape);
  s.dispose();
  return out;
}
