/**
 * Rotary position embedding (rotate-half convention, as in HF):
 *   y = x·cos + rotate_half(x)·sin,  rotate_half(x) = [−x[R/2:R], x[0:R/2]]
 * on the first R (rotary dim) channels of every head; the rest pass through.
 *
 * Tables are [rows, R/2] ("half": the usual cos(cat(f, f)) stored once) or
 * [rows, R] (full). They are built natively from integer position streams:
 * frequency j follows stream axisOf[j], angle = fp32(pos · invFreq[j]), as the
 * reference models compute it. Helpers cover 1-D RoPE, the ViT's 2-D RoPE
 * ([row freqs | column freqs], the Qwen vision layout and our Seed-ViT
 * default) and multi-section M-RoPE (Qwen2/2.5-VL contiguous sections,
 * Qwen3-VL interleaved).
 */
import { Tensor, empty, castInto, contiguousCopy, contiguousStrides } from '../tensor.ts';
import { record } from '../autograd.ts';
import { kernels } from '../native.ts';
import { gridTriples, gridPatchCount, type GridLike, type PatchOrder } from './pool.ts';

type F = Float32Array | Float64Array;
interface RopeKernels {
  ropeApply(x: F, N: number, H: number, D: number, cos: F, sin: F, Nc: number, W: number, R: number, inverse: boolean, out: F): void;
  ropeAngles(pos: Int32Array, S: number, A: number, rowStride: number, axisStride: number, invFreq: Float32Array, axisOf: Int32Array, angles: F): void;
  ropeCosSin(pos: Int32Array, S: number, A: number, rowStride: number, axisStride: number, invFreq: Float32Array, axisOf: Int32Array, cos: F, sin: F): void;
  indicesToInt32(src: BigInt64Array, dst: Int32Array, n: number, bound: number, op: string, what: string): void;
}
const K = kernels<RopeKernels>(['ropeApply', 'ropeAngles', 'ropeCosSin', 'indicesToInt32']);

export type TableDType = 'float32' | 'float64';

/** cos and sin tables, same shape: [..., rows, R/2] (half) or [..., rows, R] (full). */
export interface RopeTable {
  cos: Tensor;
  sin: Tensor;
}

// ------------------------------------------------------------- application

export interface ApplyRopeOptions {
  /** Channels rotated per head (even, ≤ D); default D. The table width must be R/2 or R. */
  rotaryDim?: number;
}

/**
 * Rotates x [..., T, H, D] (token-major: heads after tokens) by the tables cos/sin
 * [..., T, W]. The tables' leading dims must be a suffix of x's token dims (a [T, W]
 * table is shared across a batch [B, T, H, D]); leading 1s of the tables are ignored.
 * Differentiable in x (the gradient is the transposed rotation); the tables are constants.
 */
export function applyRope(x: Tensor, cos: Tensor, sin: Tensor, opts: ApplyRopeOptions = {}): Tensor {
  const op = 'applyRope';
  if (x.dtype !== 'float32' && x.dtype !== 'float64') throw new TypeError(`${op}: x must be float32 or float64, got ${x.dtype}`);
  if (x.ndim < 2) throw new RangeError(`${op}: x must be [..., T, H, D], got [${x.shape}]`);
  if (cos.ndim < 1 || !sameShape(cos.shape, sin.shape)) throw new RangeError(`${op}: cos [${cos.shape}] and sin [${sin.shape}] must have one shape`);
  const [H, D] = x.shape.slice(-2);
  const R = opts.rotaryDim ?? D;
  const W = cos.shape[cos.ndim - 1];
  if (!Number.isInteger(R) || R < 2 || R % 2 || R > D) throw new RangeError(`${op}: rotaryDim ${R} must be even and in [2, ${D}] for x [${x.shape}]`);
  if (W !== R / 2 && W !== R) {
    throw new RangeError(`${op}: table width ${W} (cos [${cos.shape}]) must be rotaryDim/2 = ${R / 2} or rotaryDim = ${R} for x [${x.shape}]`);
  }
  const xLead = x.shape.slice(0, -2);
  const cLead = stripLeadingOnes(cos.shape.slice(0, -1));
  const suffixOk = cLead.length <= xLead.length && cLead.every((v, i) => v === xLead[xLead.length - cLead.length + i]);
  if (!suffixOk) throw new RangeError(`${op}: table dims [${cos.shape.slice(0, -1)}] of cos [${cos.shape}] do not match the token dims of x [${x.shape}]`);
  const N = x.size / Math.max(1, H * D);
  const Nc = Math.max(1, cos.size / W);
  const c = asType(cos, x.dtype);
  const s = asType(sin, x.dtype);
  const out = empty(x.shape, x.dtype);
  const run = (src: Tensor, dst: Tensor, tc: Tensor, ts: Tensor, inverse: boolean): void => {
    if (src.size === 0) return;
    const sc = src.isContiguous ? src : contiguousCopy(src);
    try {
      K.ropeApply(sc.data<F>(), N, H, D, tc.data<F>(), ts.data<F>(), Nc, W, R, inverse, dst.data<F>());
    } finally {
      if (sc !== src) sc.dispose();
    }
  };
  try {
    run(x, out, c, s, false);
  } catch (e) {
    out.dispose();
    if (c !== cos) c.dispose();
    if (s !== sin) s.dispose();
    throw e;
  }
  const result = record(
    op,
    out,
    [x],
    (g, [tc, ts]) => {
      const gx = empty(g.shape, g.dtype);
      run(g, gx, tc, ts, true);
      return [gx];
    },
    [c, s],
  );
  // record() retained its own views of the tables; drop the casts made here.
  if (c !== cos) c.dispose();
  if (s !== sin) s.dispose();
  return result;
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

function stripLeadingOnes(s: readonly number[]): number[] {
  let i = 0;
  while (i < s.length && s[i] === 1) i++;
  return s.slice(i);
}

/** A contiguous table of the wanted dtype (the tensor itself when it already is one). */
function asType(t: Tensor, dtype: 'float32' | 'float64'): Tensor {
  if (t.dtype === dtype && t.isContiguous) return t;
  if (t.dtype !== 'float32' && t.dtype !== 'float64') throw new TypeError(`applyRope: tables must be float32 or float64, got ${t.dtype}`);
  const out = empty(t.shape, dtype);
  castInto(t, out);
  return out;
}

// ------------------------------------------------------------------ tables

/**
 * inv_freq[k] = 1 / θ^(2k/dim), k < dim/2, rounded through float32 at each step as the
 * reference code computes it: 1.0 / (θ ** (arange(0, dim, 2).float() / dim)).
 */
export function ropeInvFreq(dim: number, theta: number): Float32Array {
  if (!Number.isInteger(dim) || dim < 2 || dim % 2) throw new RangeError(`ropeInvFreq: dim ${dim} must be an even integer >= 2`);
  if (!(theta > 0)) throw new RangeError(`ropeInvFreq: theta ${theta} must be positive`);
  const out = new Float32Array(dim / 2);
  for (let k = 0; k < dim / 2; k++) out[k] = Math.fround(1 / Math.fround(Math.pow(theta, Math.fround((2 * k) / dim))));
  return out;
}

/** Position streams: value of stream a for token s is data[s·rowStride + a·axisStride]. */
export interface PositionStreams {
  data: Int32Array;
  /** Number of tokens S. */
  count: number;
  /** Number of streams A (1-D: 1; ViT: 2 = row, column; M-RoPE: 3 = t, h, w). */
  axes: number;
  rowStride: number;
  axisStride: number;
}

/** Angles [S, F] with F = invFreq.length: angle[s, j] = fp32(pos[s, axisOf[j]] · invFreq[j]). */
export function ropeAngles(pos: PositionStreams, invFreq: Float32Array, axisOf: Int32Array, dtype: TableDType = 'float32'): Tensor {
  const out = empty([pos.count, invFreq.length], dtype);
  try {
    K.ropeAngles(pos.data, pos.count, pos.axes, pos.rowStride, pos.axisStride, invFreq, axisOf, out.data<F>());
  } catch (e) {
    out.dispose();
    throw e;
  }
  return out;
}

/** cos/sin of ropeAngles, [S, F] each (a half table for rotary dim 2F). */
export function ropeCosSin(pos: PositionStreams, invFreq: Float32Array, axisOf: Int32Array, dtype: TableDType = 'float32'): RopeTable {
  const cos = empty([pos.count, invFreq.length], dtype);
  const sin = empty([pos.count, invFreq.length], dtype);
  try {
    K.ropeCosSin(pos.data, pos.count, pos.axes, pos.rowStride, pos.axisStride, invFreq, axisOf, cos.data<F>(), sin.data<F>());
  } catch (e) {
    cos.dispose();
    sin.dispose();
    throw e;
  }
  return { cos, sin };
}

/** Integer positions from a tensor (int32/int64) or array, flattened. */
function positionData(p: Tensor | Int32Array | readonly number[], op: string): { data: Int32Array; shape: number[] } {
  if (p instanceof Int32Array) return { data: p, shape: [p.length] };
  if (Array.isArray(p)) {
    p.forEach((v, i) => {
      if (!Number.isInteger(v) || Math.abs(v) > 0x7fffffff) throw new RangeError(`${op}: position ${v} at ${i} is not an int32 integer`);
    });
    return { data: Int32Array.from(p), shape: [p.length] };
  }
  const t = p as Tensor;
  const c = t.isContiguous ? t : contiguousCopy(t);
  try {
    if (t.dtype === 'int32') return { data: Int32Array.from(c.data<Int32Array>()), shape: [...t.shape] };
    if (t.dtype === 'int64') {
      const d = c.data<BigInt64Array>();
      const out = new Int32Array(d.length);
      K.indicesToInt32(d, out, d.length, 0x7fffffff, op, 'positions');
      return { data: out, shape: [...t.shape] };
    }
  } finally {
    if (c !== t) c.dispose();
  }
  throw new TypeError(`${op}: positions must be an int32 or int64 tensor, got ${t.dtype}`);
}

export interface Rope1dOptions {
  /** Rotary dim R (channels rotated per head); the table is [S, R/2]. */
  dim: number;
  theta: number;
  dtype?: TableDType;
}

/** 1-D RoPE tables for positions [S] → cos/sin [S, dim/2]. */
export function rope1dTable(positions: Tensor | Int32Array | readonly number[], opts: Rope1dOptions): RopeTable {
  const { data, shape } = positionData(positions, 'rope1dTable');
  if (shape.length !== 1) throw new RangeError(`rope1dTable: positions must be 1-D, got [${shape}]`);
  const inv = ropeInvFreq(opts.dim, opts.theta);
  return ropeCosSin({ data, count: data.length, axes: 1, rowStride: 1, axisStride: 0 }, inv, new Int32Array(inv.length), opts.dtype);
}

export interface Rope2dOptions {
  /** Attention head dim of the ViT; the table is [N, headDim/2]. */
  headDim: number;
  /** Default 10000 (Qwen vision towers; the Seed-ViT default). */
  theta?: number;
  /** Patch order inside each frame (default 'merge-window'). */
  order?: PatchOrder;
  /** Merge window side for 'merge-window' order (default 2). */
  mergeSize?: number;
  dtype?: TableDType;
}

/**
 * (row, column) of every patch, as interleaved pairs [N·2], frames repeated t times.
 * 'merge-window': m×m windows in raster order over the window grid, raster inside a window
 * (hpos.reshape(h/m, m, w/m, m).permute(0, 2, 1, 3).flatten()); 'raster': row-major.
 */
export function visionPatchPositions(grids: readonly GridLike[], order: PatchOrder = 'merge-window', mergeSize = 2): Int32Array {
  const op = 'visionPatchPositions';
  const triples = gridTriples(grids, op);
  if (order !== 'merge-window' && order !== 'raster') throw new RangeError(`${op}: order must be 'merge-window' or 'raster', got '${order}'`);
  const m = mergeSize;
  if (!Number.isInteger(m) || m < 1) throw new RangeError(`${op}: mergeSize ${m} must be a positive integer`);
  const out = new Int32Array(gridPatchCount(triples) * 2);
  let at = 0;
  for (let g = 0; g < triples.length; g += 3) {
    const [t, h, w] = [triples[g], triples[g + 1], triples[g + 2]];
    if (order === 'merge-window' && (h % m || w % m)) throw new RangeError(`${op}: grid ${g / 3} (h=${h}, w=${w}) is not divisible by mergeSize ${m}`);
    for (let f = 0; f < t; f++) {
      if (order === 'raster') {
        for (let r = 0; r < h; r++) for (let c = 0; c < w; c++) (out[at++] = r), (out[at++] = c);
        continue;
      }
      for (let br = 0; br < h / m; br++)
        for (let bc = 0; bc < w / m; bc++)
          for (let ir = 0; ir < m; ir++) for (let ic = 0; ic < m; ic++) (out[at++] = br * m + ir), (out[at++] = bc * m + ic);
    }
  }
  return out;
}

/** invFreq/axisOf of the ViT 2-D layout: F = headDim/2 angles, [row · inv | column · inv]. */
function rope2dFrequencies(opts: Rope2dOptions): { inv: Float32Array; axisOf: Int32Array } {
  const hd = opts.headDim;
  if (!Number.isInteger(hd) || hd < 4 || hd % 4) throw new RangeError(`rope2d: headDim ${hd} must be a multiple of 4`);
  const base = ropeInvFreq(hd / 2, opts.theta ?? 10000); // hd/4 frequencies per axis
  const q = base.length;
  const inv = new Float32Array(2 * q);
  inv.set(base, 0);
  inv.set(base, q);
  const axisOf = new Int32Array(2 * q);
  axisOf.fill(1, q);
  return { inv, axisOf };
}

function patchStreams(grids: readonly GridLike[], opts: Rope2dOptions): PositionStreams {
  const data = visionPatchPositions(grids, opts.order ?? 'merge-window', opts.mergeSize ?? 2);
  return { data, count: data.length / 2, axes: 2, rowStride: 2, axisStride: 1 };
}

/** ViT 2-D RoPE angles [N, headDim/2] = [row·inv_freq | column·inv_freq] (Qwen `rotary_pos_emb`). */
export function rope2dFreqs(grids: readonly GridLike[], opts: Rope2dOptions): Tensor {
  const { inv, axisOf } = rope2dFrequencies(opts);
  return ropeAngles(patchStreams(grids, opts), inv, axisOf, opts.dtype);
}

/** ViT 2-D RoPE tables, cos/sin [N, headDim/2] (half tables: the angles are cat(freqs, freqs)). */
export function rope2dTable(grids: readonly GridLike[], opts: Rope2dOptions): RopeTable {
  const { inv, axisOf } = rope2dFrequencies(opts);
  return ropeCosSin(patchStreams(grids, opts), inv, axisOf, opts.dtype);
}

export interface MropeOptions {
  headDim: number;
  theta: number;
  /** Frequencies per stream (t, h, w); sums to headDim/2. E.g. [16,24,24] Qwen2-VL, [24,20,20] Qwen3-VL. */
  section: readonly [number, number, number] | readonly number[];
  /** Qwen3-VL layout: frequency j uses h if j%3 = 1, w if j%3 = 2 (below 3·section), else t. */
  interleaved?: boolean;
  dtype?: TableDType;
}

/** Which stream (0 = t, 1 = h, 2 = w) each of the F frequencies follows. */
export function mropeAxisOf(section: readonly number[], F: number, interleaved = false): Int32Array {
  const op = 'mropeAxisOf';
  if (section.length !== 3 || section.some((v) => !Number.isInteger(v) || v < 0)) throw new RangeError(`${op}: section [${section}] must be 3 non-negative integers`);
  const sum = section[0] + section[1] + section[2];
  if (sum !== F) throw new RangeError(`${op}: section [${section}] sums to ${sum}, the head has ${F} frequencies`);
  const axisOf = new Int32Array(F);
  if (interleaved) {
    for (let j = 0; j < F; j++) {
      if (j % 3 === 1 && j < 3 * section[1]) axisOf[j] = 1;
      else if (j % 3 === 2 && j < 3 * section[2]) axisOf[j] = 2;
    }
  } else {
    axisOf.fill(1, section[0], section[0] + section[1]);
    axisOf.fill(2, section[0] + section[1]);
  }
  return axisOf;
}

/**
 * M-RoPE tables from position ids [3, S] or [3, B, S] (t, h, w streams, as `get_rope_index`
 * returns them) → cos/sin [S, headDim/2] or [B, S, headDim/2] (half tables).
 */
export function mropeTable(positionIds: Tensor, opts: MropeOptions): RopeTable {
  const op = 'mropeTable';
  const { data, shape } = positionData(positionIds, op);
  if (shape[0] !== 3 || shape.length < 2 || shape.length > 3) throw new RangeError(`${op}: position ids must be [3, S] or [3, B, S], got [${shape}]`);
  const F = opts.headDim / 2;
  if (!Number.isInteger(F) || F < 1) throw new RangeError(`${op}: headDim ${opts.headDim} must be even`);
  const inv = ropeInvFreq(opts.headDim, opts.theta);
  const axisOf = mropeAxisOf(opts.section, F, opts.interleaved ?? false);
  const S = data.length / 3;
  const t = ropeCosSin({ data, count: S, axes: 3, rowStride: 1, axisStride: S }, inv, axisOf, opts.dtype);
  const outShape = [...shape.slice(1), F];
  return { cos: reshapeRaw(t.cos, outShape), sin: reshapeRaw(t.sin, outShape) };
}

/** Re-labels a fresh contiguous tensor's shape (no autograd; the input is consumed). */
function reshapeRaw(t: Tensor, shape: number[]): Tensor {
  const v = t.viewAs(shape, contiguousStrides(shape));
  t.dispose();
  return v;
}
