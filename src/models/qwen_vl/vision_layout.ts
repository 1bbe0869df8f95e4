/**
 * Index bookkeeping of the Qwen vision towers (integers only, no tensor math):
 * attention segments per frame, Qwen2.5-VL's window order, and Qwen3-VL's
 * bilinear taps into the learned position table.
 */

/** A vision input's patch grid: t temporal patches of h × w patches. */
export interface Grid3 {
  t: number;
  h: number;
  w: number;
}

export function checkGrids(grids: readonly Grid3[], merge: number, rows: number, what: string): void {
  let n = 0;
  grids.forEach((g, i) => {
    for (const v of [g.t, g.h, g.w]) {
      if (!Number.isInteger(v) || v < 1) throw new RangeError(`${what} ${i}: grid (t=${g.t}, h=${g.h}, w=${g.w}) must hold positive integers`);
    }
    if (g.h % merge || g.w % merge) throw new RangeError(`${what} ${i}: grid h=${g.h}, w=${g.w} is not divisible by the merge size ${merge}`);
    n += g.t * g.h * g.w;
  });
  if (n !== rows) throw new RangeError(`${what}s: the grids describe ${n} patches but pixel values have ${rows} rows`);
}

/** Attention boundaries: one segment per frame (temporal patch) of every grid (cu_seqlens). */
export function frameSegments(grids: readonly Grid3[]): number[] {
  const cu = [0];
  for (const g of grids) for (let f = 0; f < g.t; f++) cu.push(cu[cu.length - 1] + g.h * g.w);
  return cu;
}

export interface WindowLayout {
  /** Merge-unit (2×2 group) order: windowIndex[j] = the natural group placed j-th. */
  windowIndex: Int32Array;
  /** Window boundaries in patch rows, deduplicated (no empty windows). */
  cuWindowSeqlens: number[];
}

/**
 * Qwen2.5-VL `get_window_index` (open-models.md §5.2): windows of ws×ws merged
 * cells (ws = windowSize / merge / patch), padded on the right/bottom (a full
 * extra window when divisible — empty windows are then dropped).
 */
export function windowLayout(grids: readonly Grid3[], windowSize: number, merge: number, patch: number): WindowLayout {
  const ws = windowSize / merge / patch;
  if (!Number.isInteger(ws) || ws < 1) throw new RangeError(`windowLayout: window ${windowSize} px is not a whole number of ${merge}×${patch}-px cells`);
  const unit = merge * merge;
  const index: number[] = [];
  const cu = [0];
  let offset = 0;
  for (const g of grids) {
    const H = g.h / merge, W = g.w / merge;
    const padH = ws - (H % ws), padW = ws - (W % ws);
    const nH = (H + padH) / ws, nW = (W + padW) / ws;
    for (let t = 0; t < g.t; t++) {
      for (let wh = 0; wh < nH; wh++) {
        for (let ww = 0; ww < nW; ww++) {
          let count = 0;
          for (let r = wh * ws; r < Math.min(H, (wh + 1) * ws); r++) {
            for (let c = ww * ws; c < Math.min(W, (ww + 1) * ws); c++) {
              index.push(offset + (t * H + r) * W + c);
              count++;
            }
          }
          const next = cu[cu.length - 1] + count * unit;
          if (next !== cu[cu.length - 1]) cu.push(next); // unique_consecutive drops empty windows
        }
      }
    }
    offset += g.t * H * W;
  }
  return { windowIndex: Int32Array.from(index), cuWindowSeqlens: cu };
}

/** Patch-row permutation of a merge-unit order: rows of group windowIndex[j] go to positions j·unit…. */
export function expandGroups(groups: Int32Array, unit: number): Int32Array {
  const out = new Int32Array(groups.length * unit);
  for (let j = 0; j < groups.length; j++) for (let u = 0; u < unit; u++) out[j * unit + u] = groups[j] * unit + u;
  return out;
}

/** The inverse permutation (argsort of a permutation). */
export function invertPermutation(p: Int32Array): Int32Array {
  const out = new Int32Array(p.length);
  for (let i = 0; i < p.length; i++) out[p[i]] = i;
  return out;
}

export interface BilinearTaps {
  /** Four table rows per patch: [(h0,w0), (h0,w1), (h1,w0), (h1,w1)], patch-major [N·4]. */
  indices: Int32Array[];
  /** The matching weights, one Float32Array [N] per tap. */
  weights: Float32Array[];
}

/** One axis of align-corners bilinear sampling: taps (floor, floor+1 clamped) and their f32 weights. */
function axisTaps(i: number, size: number, side: number): [number, number, number, number] {
  const f = Math.fround;
  // transformers 5.18 `_interpolation_axis_taps_weights`, in float32: src = i·(side−1) / max(size−1, 1).
  const src = f(f(i * (side - 1)) / Math.max(size - 1, 1));
  const floor = Math.floor(src);
  const d0 = f(src - floor);
  const d1 = Math.abs(f(d0 - 1));
  return [floor, Math.min(floor + 1, side - 1), Math.max(0, f(1 - d0)), Math.max(0, f(1 - d1))];
}

/**
 * Qwen3-VL learned position embeddings: align-corners bilinear interpolation of
 * the side×side table to each grid, patches in merge-window order, repeated
 * for every temporal patch (open-models.md §6.2).
 */
export function bilinearTaps(grids: readonly Grid3[], side: number, merge: number): BilinearTaps {
  const n = grids.reduce((a, g) => a + g.t * g.h * g.w, 0);
  const indices = [0, 1, 2, 3].map(() => new Int32Array(n));
  const weights = [0, 1, 2, 3].map(() => new Float32Array(n));
  const f = Math.fround;
  let at = 0;
  for (const g of grids) {
    const rows = Array.from({ length: g.h }, (_, r) => axisTaps(r, g.h, side));
    const cols = Array.from({ length: g.w }, (_, c) => axisTaps(c, g.w, side));
    for (let t = 0; t < g.t; t++) {
      for (let br = 0; br < g.h / merge; br++) {
        for (let bc = 0; bc < g.w / merge; bc++) {
          for (let ir = 0; ir < merge; ir++) {
            for (let ic = 0; ic < merge; ic++) {
              const [h0, h1, wh0, wh1] = rows[br * merge + ir];
              const [w0, w1, ww0, ww1] = cols[bc * merge + ic];
              const taps: [number, number][] = [[h0 * side + w0, f(wh0 * ww0)], [h0 * side + w1, f(wh0 * ww1)], [h1 * side + w0, f(wh1 * ww0)], [h1 * side + w1, f(wh1 * ww1)]];
              taps.forEach(([idx, wt], k) => {
                indices[k][at] = idx;
                weights[k][at] = wt;
              });
              at++;
            }
          }
        }
      }
    }
  }
  return { indices, weights };
}
