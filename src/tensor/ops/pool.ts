/**
 * 2×2 average pooling of ViT patch features (Seed-ViT's adapter input), and the
 * patch-grid description shared with the 2-D RoPE tables (ops/rope.ts).
 *
 * x packs the patches of several images (or video frames) one after another,
 * [N, C] with N = Σ t·h·w. In merge-window order (the project default, as the
 * Qwen vision towers order patches) every 2×2 window's four patches are
 * consecutive rows; in raster order they are row-major per frame. The output
 * is [N/4, C] in raster order over each frame's (h/2)×(w/2) grid either way.
 */
import { Tensor, empty, contiguousCopy as contiguousOf } from '../tensor.ts';
import { record } from '../autograd.ts';
import { kernels } from '../native.ts';

type F = Float32Array | Float64Array;
interface PoolKernels {
  avgPool2x2(x: F, N: number, C: number, grids: Int32Array, G: number, raster: boolean, out: F): void;
  avgPool2x2Backward(g: F, N: number, C: number, grids: Int32Array, G: number, raster: boolean, gx: F): void;
}
const K = kernels<PoolKernels>(['avgPool2x2', 'avgPool2x2Backward']);

/** A patch grid: t frames (default 1) of h × w patches; or a [t, h, w] triple (grid_thw). */
export type GridLike = { t?: number; h: number; w: number } | readonly [number, number, number];

/** Patch order inside each frame. */
export type PatchOrder = 'merge-window' | 'raster';

/** Grids as a flat Int32Array of (t, h, w) triples, validated to be positive integers. */
export function gridTriples(grids: readonly GridLike[], op: string): Int32Array {
  if (!Array.isArray(grids) || grids.length === 0) throw new RangeError(`${op}: grids must be a non-empty array`);
  const out = new Int32Array(grids.length * 3);
  grids.forEach((g, i) => {
    const [t, h, w] = Array.isArray(g) ? g : [(g as { t?: number }).t ?? 1, (g as { h: number }).h, (g as { w: number }).w];
    for (const v of [t, h, w]) {
      if (!Number.isInteger(v) || v < 1 || v > 0x7fffffff) throw new RangeError(`${op}: grid ${i} (t=${t}, h=${h}, w=${w}) must hold positive integers`);
    }
    out.set([t, h, w], i * 3);
  });
  return out;
}

/** Number of patches the grids describe (Σ t·h·w). */
export function gridPatchCount(triples: Int32Array): number {
  let n = 0;
  for (let i = 0; i < triples.length; i += 3) n += triples[i] * triples[i + 1] * triples[i + 2];
  return n;
}

export interface AvgPoolOptions {
  /** Patch order of x inside each frame (default 'merge-window'). */
  order?: PatchOrder;
}

/** 2×2 average pooling over each image's patch grid: x [N, C] → [N/4, C] (differentiable). */
export function avgPool2x2(x: Tensor, grids: readonly GridLike[], opts: AvgPoolOptions = {}): Tensor {
  const op = 'avgPool2x2';
  if (x.dtype !== 'float32' && x.dtype !== 'float64') throw new TypeError(`${op}: x must be float32 or float64, got ${x.dtype}`);
  if (x.ndim !== 2) throw new RangeError(`${op}: x must be [N, C], got [${x.shape}]`);
  const order = opts.order ?? 'merge-window';
  if (order !== 'merge-window' && order !== 'raster') throw new RangeError(`${op}: order must be 'merge-window' or 'raster', got '${order}'`);
  const triples = gridTriples(grids, op);
  for (let i = 0; i < triples.length; i += 3) {
    const [h, w] = [triples[i + 1], triples[i + 2]];
    if (h % 2 || w % 2) throw new RangeError(`${op}: grid ${i / 3} has h=${h}, w=${w}; both must be even for 2×2 pooling`);
  }
  const [N, C] = x.shape;
  const total = gridPatchCount(triples);
  if (total !== N) throw new RangeError(`${op}: the grids hold ${total} patches but x [${x.shape}] has ${N} rows`);
  const raster = order === 'raster';
  const G = triples.length / 3;
  const out = empty([N / 4, C], x.dtype);
  const xc = x.isContiguous ? x : contiguousOf(x);
  try {
    K.avgPool2x2(xc.data<F>(), N, C, triples, G, raster, out.data<F>());
  } finally {
    if (xc !== x) xc.dispose();
  }
  return record(op, out, [x], (g) => {
    const gx = empty([N, C], g.dtype);
    const gc = g.isContiguous ? g : contiguousOf(g);
    try {
      K.avgPool2x2Backward(gc.data<F>(), N, C, triples, G, raster, gx.data<F>());
    } finally {
      if (gc !== g) gc.dispose();
    }
    return [gx];
  });
}
