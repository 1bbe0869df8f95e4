/**
 * "Smart resize": choose a size whose sides are multiples of `factor` (28 for Seed
 * and Qwen2/2.5-VL, 32 for Qwen3-VL), close to the original aspect ratio, and whose
 * area lies within [minPixels, maxPixels]. Exact port of transformers 5.18
 * `smart_resize` (spec §3.2): Python round() ties to even, expressions evaluated left
 * to right in doubles, and the floor branch clamped to at least one factor.
 */
import { MediaError } from './errors.ts';
import { roundHalfEven } from './numeric.ts';

export interface SmartResizeOptions {
  /** Side lengths become multiples of this (patch size × merge size). */
  factor: number;
  minPixels: number;
  maxPixels: number;
  /** Largest accepted long/short side ratio; the reference rejects ratios above 200. */
  maxAspectRatio?: number;
}

export interface ResizedSize {
  height: number;
  width: number;
}

/** Seed defaults (spec §3.3): 4 to 5120 LLM tokens per image. */
export const SEED_MIN_PIXELS = 4 * 28 * 28;
export const SEED_MAX_PIXELS = 5120 * 28 * 28;

export function smartResize(height: number, width: number, opts: SmartResizeOptions): ResizedSize {
  const { factor, minPixels, maxPixels } = opts;
  const maxRatio = opts.maxAspectRatio ?? 200;
  const label = `${width}x${height}`;
  if (!(Number.isInteger(height) && Number.isInteger(width)) || height < 1 || width < 1) {
    throw new MediaError('too_small', `image size must be at least 1x1, got ${label}`);
  }
  if (!(factor > 0) || !(minPixels > 0) || !(maxPixels >= minPixels)) {
    throw new MediaError('invalid_input', `bad resize limits factor=${factor} min=${minPixels} max=${maxPixels}`);
  }
  const ratio = Math.max(height, width) / Math.min(height, width);
  if (ratio > maxRatio) {
    throw new MediaError('aspect_ratio', `absolute aspect ratio must be smaller than ${maxRatio}, got ${ratio}`, label);
  }
  let hBar = Math.max(factor, roundHalfEven(height / factor) * factor);
  let wBar = Math.max(factor, roundHalfEven(width / factor) * factor);
  if (hBar * wBar > maxPixels) {
    const beta = Math.sqrt((height * width) / maxPixels);
    hBar = Math.max(factor, Math.floor(height / beta / factor) * factor);
    wBar = Math.max(factor, Math.floor(width / beta / factor) * factor);
  } else if (hBar * wBar < minPixels) {
    const beta = Math.sqrt(minPixels / (height * width));
    hBar = Math.ceil((height * beta) / factor) * factor;
    wBar = Math.ceil((width * beta) / factor) * factor;
  }
  return { height: hBar, width: wBar };
}
