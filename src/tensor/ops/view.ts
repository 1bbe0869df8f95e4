/**
 * Shape and layout ops: views that share storage (reshape, permute, narrow,
 * expand, …) and the copies that make them contiguous, each with its
 * gradient rule.
 */
import { Tensor, type Shape, contiguousStrides, contiguousCopy, copyInto, castInto, empty, zeros, numelOf } from '../tensor.ts';
import { record, needsGrad } from '../autograd.ts';
import type { DType } from '../dtype.ts';
import { sumTo } from './reduce.ts';

function normDim(dim: number, ndim: number, op: string): number {
  const d = dim < 0 ? dim + ndim : dim;
  if (!Number.isInteger(d) || d < 0 || d >= ndim) throw new RangeError(`${op}: dim ${dim} out of range for ${ndim}-d tensor`);
  return d;
}
export { normDim };

/** Strides for viewing `t` as `shape` without copying, or null if impossible. */
function viewStrides(t: Tensor, shape: Shape): number[] | null {
  if (t.isContiguous) return contiguousStrides(shape);
  // Merge/split only dimensions that are contiguous with each other.
  const oldShape = t.shape.filter((d) => d !== 1);
  const oldStrides = t.strides.filter((_, i) => t.shape[i] !== 1);
  const newStrides = new Array<number>(shape.length).fill(0);
  let oi = 0;
  let ni = 0;
  while (ni < shape.length) {
    if (shape[ni] === 1) {
      newStrides[ni++] = 1;
      continue;
    }
    if (oi >= oldShape.length) return null;
    // Collect a chunk of old dims whose product equals a chunk of new dims.
    let oldProd = oldShape[oi];
    const chunkStart = oi;
    let newProd = shape[ni];
    const newStart = ni;
    while (oldProd !== newProd) {
      if (oldProd < newProd) {
        oi++;
        if (oi >= oldShape.length) return null;
        if (oldStrides[oi - 1] !== oldStrides[oi] * oldShape[oi]) return null;
        oldProd *= oldShape[oi];
      } else {
        ni++;
        if (ni >= shape.length) return null;
        newProd *= shape[ni];
      }
    }
    for (let q = chunkStart; q < oi; q++) if (oldStrides[q] !== oldStrides[q + 1] * oldShape[q + 1]) return null;
    let acc = oldStrides[oi];
    for (let k = ni; k >= newStart; k--) {
      newStrides[k] = acc;
      acc *= shape[k];
    }
    oi++;
    ni++;
  }
  return oi === oldShape.length ? newStrides : null;
}

function resolveShape(shape: Shape, size: number, op: string): number[] {
  const out = [...shape];
  const inferred = out.indexOf(-1);
  if (inferred >= 0) {
    const known = numelOf(out.filter((_, i) => i !== inferred));
    if (known === 0 || size % known !== 0) throw new RangeError(`${op}: cannot infer -1 in [${shape}] for ${size} elements`);
    out[inferred] = size / known;
  }
  if (out.some((d) => !Number.isInteger(d) || d < 0) || numelOf(out) !== size) {
    throw new RangeError(`${op}: shape [${shape}] does not match ${size} elements`);
  }
  return out;
}

/** Same elements, new shape (one dim may be -1). A view when the layout allows, else a copy. */
export function reshape(x: Tensor, shape: Shape): Tensor {
  const target = resolveShape(shape, x.size, 'reshape');
  const strides = viewStrides(x, target);
  let out: Tensor;
  if (strides) out = x.viewAs(target, strides);
  else {
    const c = contiguousCopy(x);
    out = c.viewAs(target, contiguousStrides(target));
    c.dispose();
  }
  const inShape = x.shape;
  return record('reshape', out, [x], (g) => [reshape(g, inShape)]);
}

export function flatten(x: Tensor, startDim = 0, endDim = -1): Tensor {
  if (x.ndim === 0) return reshape(x, [1]);
  const s = normDim(startDim, x.ndim, 'flatten');
  const e = normDim(endDim, x.ndim, 'flatten');
  const shape = [...x.shape.slice(0, s), numelOf(x.shape.slice(s, e + 1)), ...x.shape.slice(e + 1)];
  return reshape(x, shape);
}

export function unsqueeze(x: Tensor, dim: number): Tensor {
  const d = normDim(dim, x.ndim + 1, 'unsqueeze');
  const shape = [...x.shape];
  shape.splice(d, 0, 1);
  return reshape(x, shape);
}

export function squeeze(x: Tensor, dim?: number): Tensor {
  if (dim === undefined) return reshape(x, x.shape.filter((d) => d !== 1));
  const d = normDim(dim, x.ndim, 'squeeze');
  if (x.shape[d] !== 1) throw new RangeError(`squeeze: dim ${dim} has size ${x.shape[d]}, not 1`);
  return reshape(x, x.shape.filter((_, i) => i !== d));
}

/** Reorders dimensions (a view). */
export function permute(x: Tensor, dims: readonly number[]): Tensor {
  if (dims.length !== x.ndim) throw new RangeError(`permute: ${dims.length} dims given for a ${x.ndim}-d tensor [${x.shape}]`);
  const nd = dims.map((d) => normDim(d, x.ndim, 'permute'));
  if (new Set(nd).size !== nd.length) throw new RangeError(`permute: repeated dims [${dims}]`);
  const out = x.viewAs(nd.map((d) => x.shape[d]), nd.map((d) => x.strides[d]));
  const inverse = new Array<number>(nd.length);
  nd.forEach((d, i) => (inverse[d] = i));
  return record('permute', out, [x], (g) => [permute(g, inverse)]);
}

export function transpose(x: Tensor, d0 = -2, d1 = -1): Tensor {
  const a = normDim(d0, x.ndim, 'transpose');
  const b = normDim(d1, x.ndim, 'transpose');
  const dims = x.shape.map((_, i) => i);
  dims[a] = b;
  dims[b] = a;
  return permute(x, dims);
}

/** Elements [start, start+length) along `dim` (a view). */
export function narrow(x: Tensor, dim: number, start: number, length: number): Tensor {
  const d = normDim(dim, x.ndim, 'narrow');
  if (!Number.isInteger(start) || !Number.isInteger(length) || start < 0 || length < 0 || start + length > x.shape[d]) {
    throw new RangeError(`narrow: [${start}, ${start + length}) out of range for dim ${d} of size ${x.shape[d]}`);
  }
  const shape = [...x.shape];
  shape[d] = length;
  const out = x.viewAs(shape, x.strides, x.offset + start * x.strides[d]);
  const inShape = x.shape;
  return record('narrow', out, [x], (g) => {
    const gx = zeros(inShape, g.dtype);
    const win = gx.viewAs(g.shape, gx.strides, start * gx.strides[d]);
    copyInto(g.isContiguous ? g : contiguous(g), win);
    win.dispose();
    return [gx];
  });
}

/** Index `index` along `dim`, dropping that dim (a view). */
export function select(x: Tensor, dim: number, index: number): Tensor {
  const d = normDim(dim, x.ndim, 'select');
  const i = index < 0 ? index + x.shape[d] : index;
  return squeeze(narrow(x, d, i, 1), d);
}

/** Broadcasts size-1 dims (and new leading dims) to `shape` without copying. */
export function expand(x: Tensor, shape: Shape): Tensor {
  if (shape.length < x.ndim) throw new RangeError(`expand: cannot expand [${x.shape}] to fewer dims [${shape}]`);
  const lead = shape.length - x.ndim;
  const strides = shape.map((s, i) => {
    if (i < lead) return 0;
    const xd = x.shape[i - lead];
    if (xd === s) return x.strides[i - lead];
    if (xd === 1) return 0;
    throw new RangeError(`expand: cannot expand [${x.shape}] to [${shape}]`);
  });
  const out = x.viewAs([...shape], strides);
  const inShape = x.shape;
  return record('expand', out, [x], (g) => [sumTo(g, inShape)]);
}

/** A contiguous tensor with the same values (returns a new reference to x if already contiguous). */
export function contiguous(x: Tensor): Tensor {
  if (x.isContiguous) {
    const out = x.viewAs(x.shape, x.strides);
    return record('contiguous', out, [x], (g) => [g]);
  }
  return clone(x);
}

/** A contiguous copy with its own storage. */
export function clone(x: Tensor): Tensor {
  const out = contiguousCopy(x);
  return record('clone', out, [x], (g) => [g]);
}

/** Converts to another dtype (a copy; the same tensor object if already that dtype is NOT returned: always new). */
export function cast(x: Tensor, dtype: DType): Tensor {
  const out = empty(x.shape, dtype);
  castInto(x, out);
  const inDtype = x.dtype;
  return record('cast', out, [x], (g) => [cast(g, inDtype)]);
}

/** Concatenates along `dim`; all other dims must agree. */
export function cat(xs: readonly Tensor[], dim = 0): Tensor {
  if (xs.length === 0) throw new RangeError('cat: no tensors given');
  const first = xs[0];
  const d = normDim(dim, first.ndim, 'cat');
  for (const x of xs) {
    if (x.dtype !== first.dtype) throw new TypeError(`cat: dtype ${x.dtype} vs ${first.dtype}`);
    if (x.ndim !== first.ndim || x.shape.some((s, i) => i !== d && s !== first.shape[i])) {
      throw new RangeError(`cat: shape [${x.shape}] does not match [${first.shape}] outside dim ${d}`);
    }
  }
  const shape = [...first.shape];
  shape[d] = xs.reduce((a, x) => a + x.shape[d], 0);
  const out = empty(shape, first.dtype);
  let at = 0;
  const sizes: number[] = [];
  for (const x of xs) {
    const win = out.viewAs(x.shape, out.strides, at * out.strides[d]);
    copyInto(x, win);
    win.dispose();
    sizes.push(x.shape[d]);
    at += x.shape[d];
  }
  if (!needsGrad(...xs)) return out;
  return record('cat', out, [...xs], (g) => {
    let s = 0;
    return sizes.map((n) => {
      const part = contiguous(narrow(g, d, s, n));
      s += n;
      return part;
    });
  });
}

export function stack(xs: readonly Tensor[], dim = 0): Tensor {
  if (xs.length === 0) throw new RangeError('stack: no tensors given');
  const d = normDim(dim, xs[0].ndim + 1, 'stack');
  return cat(xs.map((x) => unsqueeze(x, d)), d);
}

/** Splits along `dim` into pieces of the given sizes (views). */
export function split(x: Tensor, sizes: readonly number[], dim = 0): Tensor[] {
  const d = normDim(dim, x.ndim, 'split');
  const total = sizes.reduce((a, b) => a + b, 0);
  if (total !== x.shape[d]) throw new RangeError(`split: sizes [${sizes}] sum to ${total}, dim ${d} has ${x.shape[d]}`);
  let s = 0;
  return sizes.map((n) => {
    const v = narrow(x, d, s, n);
    s += n;
    return v;
  });
}
