/**
 * Elementwise ops with numpy broadcasting: binary arithmetic, scalar
 * variants, unary math, `where` and `clamp`, each with its gradient
 * (gradients of broadcast inputs are reduced with `sumTo`). Inputs may be
 * any strided view; the native kernels (native/src/elementwise*.cc) read
 * them in place, and outputs are fresh contiguous tensors. float32/float64.
 */
import { Tensor, type Shape, empty, scalar } from '../tensor.ts';
import { record } from '../autograd.ts';
import { tidy } from '../scope.ts';
import { kernels } from '../native.ts';
import { arrayClass, bytesOf, type TypedArray } from '../dtype.ts';
import { sumTo } from './reduce.ts';

type FloatArray = Float32Array | Float64Array;

interface EwKernels {
  ewBinary(code: number, out: FloatArray, a: FloatArray, aOff: number, aStr: number[], b: FloatArray, bOff: number, bStr: number[], shape: number[], alpha: number, beta: number): void;
  ewUnary(code: number, out: FloatArray, x: FloatArray, xOff: number, xStr: number[], shape: number[], alpha: number, beta: number): void;
  ewWhere(out: FloatArray, c: Uint8Array, cOff: number, cStr: number[], a: FloatArray, aOff: number, aStr: number[], b: FloatArray, bOff: number, bStr: number[], shape: number[]): void;
}
const K = kernels<EwKernels>(['ewBinary', 'ewUnary', 'ewWhere']);

/** Binary kernel codes (native/src/elementwise_ops.h). */
export const BIN = {
  add: 0, sub: 1, mul: 2, div: 3, maximum: 4, minimum: 5, pow: 6, addScaled: 7, mulScaled: 8, swiglu: 9,
  maxMask: 10, minMask: 11, expSub: 12, sqrtBwd: 13, rsqrtBwd: 14, absBwd: 15, clampBwd: 16, powScalarBwd: 17,
  tanhBwd: 18, sigmoidBwd: 19, reluBwd: 20, geluBwd: 21, geluTanhBwd: 22, quickGeluBwd: 23, siluBwd: 24,
} as const;

/** Unary kernel codes (native/src/elementwise_ops.h). */
export const UN = {
  neg: 0, exp: 1, log: 2, sqrt: 3, rsqrt: 4, abs: 5, tanh: 6, sigmoid: 7, relu: 8, square: 9, gelu: 10,
  geluTanh: 11, quickGelu: 12, silu: 13, addScalar: 14, mulScalar: 15, powScalar: 16, clamp: 17, affine: 18,
} as const;

// ---------------------------------------------------------------- shared checks and layouts

/** Throws unless every tensor is float32/float64 and all share one dtype. */
export function assertFloat(op: string, ...ts: Tensor[]): void {
  const dt = ts[0].dtype;
  for (const t of ts) {
    if (t.dtype !== 'float32' && t.dtype !== 'float64') {
      throw new TypeError(`${op}: unsupported dtype ${t.dtype} for [${t.shape}] (float32 or float64 only)`);
    }
    if (t.dtype !== dt) {
      throw new TypeError(`${op}: dtype mismatch ${dt} vs ${t.dtype} (shapes ${ts.map((x) => `[${x.shape}]`).join(', ')})`);
    }
  }
}

/** The numpy broadcast of two shapes; throws a RangeError naming `op` if they do not broadcast. */
export function broadcastShapes(a: Shape, b: Shape, op = 'broadcast'): number[] {
  const n = Math.max(a.length, b.length);
  const out = new Array<number>(n);
  for (let i = 0; i < n; i++) {
    const da = i < n - a.length ? 1 : a[i - (n - a.length)];
    const db = i < n - b.length ? 1 : b[i - (n - b.length)];
    if (da !== db && da !== 1 && db !== 1) throw new RangeError(`${op}: shapes [${a}] and [${b}] cannot be broadcast`);
    out[i] = da === 1 ? db : da;
  }
  return out;
}

/** The whole storage of `t` as a typed array (kernels index it with t.offset and strides). */
function storageArray<A extends TypedArray>(t: Tensor): A {
  const C = arrayClass(t.dtype);
  return new C(t.storage.buffer, 0, Math.floor(t.storage.nbytes / bytesOf(t.dtype))) as A;
}

/** t's strides aligned to the output `shape`: 0 for new leading and broadcast dims. */
function alignedStrides(t: Tensor, shape: Shape): number[] {
  const lead = shape.length - t.ndim;
  return shape.map((_, i) => (i < lead || t.shape[i - lead] === 1 ? 0 : t.strides[i - lead]));
}

/** Applies binary kernel `code` with broadcasting, without recording a gradient (building block for ops). */
export function binaryOp(op: string, code: number, a: Tensor, b: Tensor, alpha = 0, beta = 0): Tensor {
  assertFloat(op, a, b);
  const shape = broadcastShapes(a.shape, b.shape, op);
  const out = empty(shape, a.dtype);
  if (out.size > 0) {
    K.ewBinary(code, out.data<FloatArray>(), storageArray(a), a.offset, alignedStrides(a, shape), storageArray(b), b.offset,
      alignedStrides(b, shape), shape, alpha, beta);
  }
  return out;
}

/** Applies unary kernel `code` to any strided view, without recording a gradient. */
export function unaryOp(op: string, code: number, x: Tensor, alpha = 0, beta = 0): Tensor {
  assertFloat(op, x);
  const out = empty(x.shape, x.dtype);
  if (out.size > 0) K.ewUnary(code, out.data<FloatArray>(), storageArray(x), x.offset, [...x.strides], [...x.shape], alpha, beta);
  return out;
}

// ---------------------------------------------------------------- binary ops

/** Records a broadcasting binary op whose input gradients are rule(g, saved) reduced to each input's shape. */
function recordBinary(op: string, out: Tensor, a: Tensor, b: Tensor, save: Tensor[],
  rule: (g: Tensor, saved: Tensor[], need: [boolean, boolean]) => [Tensor | null, Tensor | null]): Tensor {
  const need: [boolean, boolean] = [a.requiresGrad, b.requiresGrad];
  const sa = a.shape, sb = b.shape;
  return record(op, out, [a, b], (g, saved) => tidy(() => {
    const [ga, gb] = rule(g, saved, need);
    return [ga && need[0] ? sumTo(ga, sa) : null, gb && need[1] ? sumTo(gb, sb) : null];
  }), save);
}

export function add(a: Tensor, b: Tensor): Tensor {
  return recordBinary('add', binaryOp('add', BIN.add, a, b), a, b, [], (g) => [g, g]);
}

export function sub(a: Tensor, b: Tensor): Tensor {
  return recordBinary('sub', binaryOp('sub', BIN.sub, a, b), a, b, [], (g, _s, need) => [g, need[1] ? neg(g) : null]);
}

export function mul(a: Tensor, b: Tensor): Tensor {
  return recordBinary('mul', binaryOp('mul', BIN.mul, a, b), a, b, [a, b], (g, [sa, sb], need) => [
    need[0] ? mul(g, sb) : null,
    need[1] ? mul(g, sa) : null,
  ]);
}

export function div(a: Tensor, b: Tensor): Tensor {
  const out = binaryOp('div', BIN.div, a, b);
  // d/da = 1/b; d/db = -a/b^2 = -(g/b) * out.
  return recordBinary('div', out, a, b, [b, out], (g, [sb, so], need) => {
    const ga = div(g, sb);
    return [ga, need[1] ? binaryOp('div', BIN.mulScaled, ga, so, -1) : null];
  });
}

/** a + alpha * b in one pass (residual adds, scaled updates). */
export function addScaled(a: Tensor, b: Tensor, alpha: number): Tensor {
  return recordBinary('addScaled', binaryOp('addScaled', BIN.addScaled, a, b, alpha), a, b, [], (g, _s, need) => [
    g,
    need[1] ? mulScalar(g, alpha) : null,
  ]);
}

/** Elementwise max (NaN-propagating); ties send half the gradient to each side. */
export function maximum(a: Tensor, b: Tensor): Tensor {
  return recordBinary('maximum', binaryOp('maximum', BIN.maximum, a, b), a, b, [a, b], (g, [sa, sb], need) => {
    const ga = mul(g, binaryOp('maximum', BIN.maxMask, sa, sb));
    return [ga, need[1] ? sub(g, ga) : null];
  });
}

/** Elementwise min (NaN-propagating); ties send half the gradient to each side. */
export function minimum(a: Tensor, b: Tensor): Tensor {
  return recordBinary('minimum', binaryOp('minimum', BIN.minimum, a, b), a, b, [a, b], (g, [sa, sb], need) => {
    const ga = mul(g, binaryOp('minimum', BIN.minMask, sa, sb));
    return [ga, need[1] ? sub(g, ga) : null];
  });
}

/** a ** b elementwise. */
export function pow(a: Tensor, b: Tensor): Tensor {
  const out = binaryOp('pow', BIN.pow, a, b);
  // d/da = b * a^(b-1); d/db = out * ln(a).
  return recordBinary('pow', out, a, b, [a, b, out], (g, [sa, sb, so], need) => [
    need[0] ? mul(g, mul(sb, pow(sa, addScalar(sb, -1)))) : null,
    need[1] ? mul(mul(g, so), log(sa)) : null,
  ]);
}

// ---------------------------------------------------------------- scalar variants

export function addScalar(x: Tensor, c: number): Tensor {
  return record('addScalar', unaryOp('addScalar', UN.addScalar, x, c), [x], (g) => [g]);
}

export function mulScalar(x: Tensor, c: number): Tensor {
  return record('mulScalar', unaryOp('mulScalar', UN.mulScalar, x, c), [x], (g) => [mulScalar(g, c)]);
}

export function powScalar(x: Tensor, p: number): Tensor {
  return record('powScalar', unaryOp('powScalar', UN.powScalar, x, p), [x],
    (g, [sx]) => [binaryOp('powScalar', BIN.powScalarBwd, g, sx, p)], [x]);
}

// ---------------------------------------------------------------- unary math

/** A unary op whose gradient is binary kernel `bwd`(g, input or output). */
function unaryWithGrad(op: string, code: number, x: Tensor, bwd: number, from: 'input' | 'output'): Tensor {
  const out = unaryOp(op, code, x);
  return record(op, out, [x], (g, [s]) => [binaryOp(op, bwd, g, s)], [from === 'input' ? x : out]);
}

export function neg(x: Tensor): Tensor {
  return record('neg', unaryOp('neg', UN.neg, x), [x], (g) => [neg(g)]);
}

export function exp(x: Tensor): Tensor {
  return unaryWithGrad('exp', UN.exp, x, BIN.mul, 'output');
}

export function log(x: Tensor): Tensor {
  return unaryWithGrad('log', UN.log, x, BIN.div, 'input');
}

export function sqrt(x: Tensor): Tensor {
  return unaryWithGrad('sqrt', UN.sqrt, x, BIN.sqrtBwd, 'output');
}

/** 1 / sqrt(x). */
export function rsqrt(x: Tensor): Tensor {
  return unaryWithGrad('rsqrt', UN.rsqrt, x, BIN.rsqrtBwd, 'output');
}

export function abs(x: Tensor): Tensor {
  return unaryWithGrad('abs', UN.abs, x, BIN.absBwd, 'input');
}

export function tanh(x: Tensor): Tensor {
  return unaryWithGrad('tanh', UN.tanh, x, BIN.tanhBwd, 'output');
}

export function sigmoid(x: Tensor): Tensor {
  return unaryWithGrad('sigmoid', UN.sigmoid, x, BIN.sigmoidBwd, 'output');
}

export function relu(x: Tensor): Tensor {
  return unaryWithGrad('relu', UN.relu, x, BIN.reluBwd, 'output'); // relu(x) > 0 exactly where x > 0
}

export function square(x: Tensor): Tensor {
  const out = unaryOp('square', UN.square, x);
  return record('square', out, [x], (g, [sx]) => [binaryOp('square', BIN.mulScaled, g, sx, 2)], [x]);
}

/** Limits x to [min, max] (either bound optional); the gradient passes where min <= x <= max. */
export function clamp(x: Tensor, min?: number | null, max?: number | null): Tensor {
  const lo = min ?? -Infinity, hi = max ?? Infinity;
  if (Number.isNaN(lo) || Number.isNaN(hi)) throw new RangeError(`clamp: bounds must not be NaN (min ${min}, max ${max})`);
  const out = unaryOp('clamp', UN.clamp, x, lo, hi);
  return record('clamp', out, [x], (g, [sx]) => [binaryOp('clamp', BIN.clampBwd, g, sx, lo, hi)], [x]);
}

// ---------------------------------------------------------------- where

/** cond ? a : b elementwise, cond a uint8 mask; all three broadcast together. */
export function where(cond: Tensor, a: Tensor, b: Tensor): Tensor {
  if (cond.dtype !== 'uint8') throw new TypeError(`where: cond must be uint8, got ${cond.dtype} [${cond.shape}]`);
  const out = whereOp(cond, a, b);
  const need = [a.requiresGrad, b.requiresGrad];
  const sa = a.shape, sb = b.shape;
  return record('where', out, [a, b], (g, [c]) => tidy(() => {
    const zero = scalar(0, g.dtype);
    return [
      need[0] ? sumTo(whereOp(c, g, zero), sa) : null,
      need[1] ? sumTo(whereOp(c, zero, g), sb) : null,
    ];
  }), [cond]);
}

function whereOp(cond: Tensor, a: Tensor, b: Tensor): Tensor {
  assertFloat('where', a, b);
  const shape = broadcastShapes(broadcastShapes(cond.shape, a.shape, 'where'), b.shape, 'where');
  const out = empty(shape, a.dtype);
  if (out.size > 0) {
    K.ewWhere(out.data<FloatArray>(), storageArray(cond), cond.offset, alignedStrides(cond, shape), storageArray(a), a.offset,
      alignedStrides(a, shape), storageArray(b), b.offset, alignedStrides(b, shape), shape);
  }
  return out;
}
