/**
 * Normalisation and patch flattening into the order the vision tower expects.
 *
 * Row order is merge-window order: the merge×merge blocks in raster order over the
 * block grid, and inside a block (0,0), (0,1), (1,0), (1,1). So the 2×2 pooling
 * (Seed) or concatenation (Qwen) is over consecutive rows, and the pooled tokens
 * come out in raster order. Within a row the layout is (channel, time, y, x), as in
 * the Qwen processors; for Seed (temporal patch 1) that is a plain C·P·P patch.
 */
import type { RgbImage } from './resample.ts';
import type { VisionPreprocessConfig } from './vision_config.ts';

export interface PatchGrid {
  /** Temporal patches. */
  t: number;
  /** Patch rows (height / patchSize). */
  h: number;
  /** Patch columns (width / patchSize). */
  w: number;
}

export interface PatchifiedImage {
  /** Row-major [nPatches, patchDim] float32. */
  pixelValues: Float32Array;
  shape: [number, number];
  grid: PatchGrid;
  /** LLM tokens after merging: t·h·w / merge². */
  tokens: number;
}

type PatchConfig = Pick<VisionPreprocessConfig, 'patchSize' | 'mergeSize' | 'temporalPatchSize' | 'rescaleFactor' | 'mean' | 'std'>;

/**
 * Patchify one or more equally sized frames. A still image is one frame; with a
 * temporal patch size of 2 it is repeated, and an odd frame count is padded by
 * repeating the last frame (as the reference processors do).
 */
export function patchifyFrames(frames: RgbImage[], cfg: PatchConfig): PatchifiedImage {
  if (frames.length === 0) throw new RangeError('patchify needs at least one frame');
  const { width, height } = frames[0]!;
  const P = cfg.patchSize;
  const M = cfg.mergeSize;
  const T = cfg.temporalPatchSize;
  if (width % (P * M) !== 0 || height % (P * M) !== 0) {
    throw new RangeError(`frame ${width}x${height} is not a multiple of ${P * M}; resize first`);
  }
  for (const f of frames) {
    if (f.width !== width || f.height !== height) throw new RangeError('all frames must share one size');
  }
  const padded = frames.slice();
  while (padded.length % T !== 0 || padded.length < T) padded.push(padded[padded.length - 1]!);

  // Normalise each frame once into planar float64 (C, H, W), then cast on copy.
  const planes = padded.map((f) => normalisePlanar(f, cfg));
  const gt = padded.length / T;
  const gh = height / P;
  const gw = width / P;
  const patchDim = 3 * T * P * P;
  const nPatches = gt * gh * gw;
  const out = new Float32Array(nPatches * patchDim);
  const plane = width * height;
  let row = 0;
  for (let t = 0; t < gt; t++) {
    for (let bh = 0; bh < gh / M; bh++) {
      for (let bw = 0; bw < gw / M; bw++) {
        for (let mh = 0; mh < M; mh++) {
          for (let mw = 0; mw < M; mw++) {
            const y0 = (bh * M + mh) * P;
            const x0 = (bw * M + mw) * P;
            let o = row * patchDim;
            for (let c = 0; c < 3; c++) {
              for (let tp = 0; tp < T; tp++) {
                const src = planes[t * T + tp]!;
                for (let py = 0; py < P; py++) {
                  const s = c * plane + (y0 + py) * width + x0;
                  for (let px = 0; px < P; px++) out[o++] = src[s + px]!;
                }
              }
            }
            row++;
          }
        }
      }
    }
  }
  return { pixelValues: out, shape: [nPatches, patchDim], grid: { t: gt, h: gh, w: gw }, tokens: (gt * gh * gw) / (M * M) };
}

/** (v·rescale − mean) / std in double precision, channel-planar. */
function normalisePlanar(f: RgbImage, cfg: PatchConfig): Float64Array {
  const n = f.width * f.height;
  const out = new Float64Array(3 * n);
  // Per channel lookup table: 256 possible byte values.
  const lut = new Float64Array(3 * 256);
  for (let c = 0; c < 3; c++) {
    for (let v = 0; v < 256; v++) lut[c * 256 + v] = (v * cfg.rescaleFactor - cfg.mean[c]!) / cfg.std[c]!;
  }
  const d = f.data;
  for (let i = 0; i < n; i++) {
    out[i] = lut[d[3 * i]!]!;
    out[n + i] = lut[256 + d[3 * i + 1]!]!;
    out[2 * n + i] = lut[512 + d[3 * i + 2]!]!;
  }
  return out;
}
