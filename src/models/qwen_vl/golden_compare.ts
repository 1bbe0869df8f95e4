/**
 * Comparison helpers for golden checks: our tensors are packed rows [T, …]
 * (pads dropped), the reference's are [B, S, …] with left padding, so every
 * comparison goes through a token map (packed index → (b, s)).
 */
import type { Tensor } from '../../tensor/index.ts';

export interface TensorDiff {
  name: string;
  maxAbs: number;
  tol: number;
  ok: boolean;
}

export interface ExactCheck {
  name: string;
  ok: boolean;
  detail?: string;
}

/** Packed token t ↔ reference (b, s), for rows of length S. */
export interface TokenMap {
  B: number;
  S: number;
  /** b·S + s of each packed token. */
  flat: Int32Array;
  rowLengths: number[];
  /** Packed index of the first token of each row. */
  rowStarts: number[];
}

export function tokenMap(mask: number[][]): TokenMap {
  const B = mask.length, S = mask[0]?.length ?? 0;
  const flat: number[] = [];
  const rowLengths: number[] = [];
  const rowStarts: number[] = [];
  mask.forEach((row, b) => {
    rowStarts.push(flat.length);
    row.forEach((m, s) => m && flat.push(b * S + s));
    rowLengths.push(flat.length - rowStarts[b]);
  });
  return { B, S, flat: Int32Array.from(flat), rowLengths, rowStarts };
}

export const f32 = (t: Tensor): Float32Array => Float32Array.from(t.toArray() as number[]);

/** max |a − b| over equal-length arrays (NaN if the lengths differ or a value is NaN). */
export function maxAbs(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return NaN;
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (!(d <= m)) m = Number.isNaN(d) ? NaN : d;
    if (Number.isNaN(m)) return NaN;
  }
  return m;
}

/**
 * max |ours[t, :] − ref[flat[t], :]| with `ours` packed [T, D] and `ref` [B·S, D].
 * `ourCols`/`refOffset` compare ours against a column window of a wider reference row.
 */
export function maxAbsRows(ours: Float32Array, ref: Float32Array, map: TokenMap, D: number, refD = D, refOffset = 0): number {
  const T = map.flat.length;
  if (ours.length !== T * D || ref.length !== map.B * map.S * refD) return NaN;
  let m = 0;
  for (let t = 0; t < T; t++) {
    const o = t * D, r = map.flat[t] * refD + refOffset;
    for (let j = 0; j < D; j++) {
      const d = Math.abs(ours[o + j] - ref[r + j]);
      if (!(d <= m)) {
        if (Number.isNaN(d)) return NaN;
        m = d;
      }
    }
  }
  return m;
}

export function diffOf(name: string, maxAbsValue: number, tol: number): TensorDiff {
  return { name, maxAbs: maxAbsValue, tol, ok: maxAbsValue <= tol };
}

export function sameInts(name: string, ours: ArrayLike<number>, ref: ArrayLike<number>): ExactCheck {
  if (ours.length !== ref.length) return { name, ok: false, detail: `length ${ours.length} vs reference ${ref.length}` };
  for (let i = 0; i < ours.length; i++) {
    if (ours[i] !== ref[i]) return { name, ok: false, detail: `first difference at ${i}: ${ours[i]} vs reference ${ref[i]}` };
  }
  return { name, ok: true };
}

/**
 * Top-k id lists: equal, except where the reference's neighbouring values are
 * within `tol` (a near tie may come out in either order).
 */
export function sameTopk(name: string, ours: ArrayLike<number>, ref: ArrayLike<number>, refValues: ArrayLike<number>, k: number, tol: number): ExactCheck {
  const rows = ref.length / k;
  if (ours.length !== ref.length) return { name, ok: false, detail: `length ${ours.length} vs reference ${ref.length}` };
  let ties = 0;
  for (let r = 0; r < rows; r++) {
    for (let i = 0; i < k; i++) {
      const at = r * k + i;
      if (ours[at] === ref[at]) continue;
      const v = refValues[at];
      const nearPrev = i > 0 && Math.abs(refValues[at - 1] - v) <= tol;
      const nearNext = i < k - 1 ? Math.abs(refValues[at + 1] - v) <= tol : true; // the (k+1)-th value is unknown
      if (!nearPrev && !nearNext) return { name, ok: false, detail: `row ${r}, rank ${i}: id ${ours[at]} vs reference ${ref[at]} (no near tie)` };
      ties++;
    }
  }
  return { name, ok: true, ...(ties ? { detail: `${ties} near-tie swap(s)` } : {}) };
}

/** Flattens nested number arrays. */
export function flatInts(x: unknown): number[] {
  const out: number[] = [];
  const walk = (v: unknown): void => {
    if (Array.isArray(v)) v.forEach(walk);
    else out.push(v as number);
  };
  walk(x);
  return out;
}
