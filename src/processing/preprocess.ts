/**
 * The full image path: decoded RGB → smart resize → normalise → patches. Returns
 * plain typed arrays plus the size bookkeeping needed to map model coordinates
 * back to the original image.
 */
import { MediaError } from './errors.ts';
import { loadImage, type LoadImageOptions } from './image.ts';
import { patchifyFrames, type PatchGrid } from './patchify.ts';
import { resizeRgb, type RgbImage } from './resample.ts';
import { smartResize, type ResizedSize } from './smart_resize.ts';
import type { MediaSource } from './source.ts';
import { SEED_VISION, type VisionPreprocessConfig } from './vision_config.ts';

export interface PreprocessOptions {
  /** Override the preset's pixel limits for this image. */
  minPixels?: number;
  maxPixels?: number;
  /**
   * Smallest accepted side of the decoded image (default 2). A 1-pixel image is
   * nearly always a tracking pixel or a broken download; set 1 to accept it (the
   * reference would upscale it to 56×56).
   */
  minSide?: number;
}

export interface PreprocessedImage {
  original: { width: number; height: number };
  resized: ResizedSize;
  /** Patch grid (t, h, w) in ViT patches. */
  grid: PatchGrid;
  /** Merged (LLM-token) grid: rows = h / merge, cols = w / merge. */
  tokenGrid: { rows: number; cols: number };
  /** LLM tokens for this image. */
  tokens: number;
  pixelValues: Float32Array;
  shape: [number, number];
}

/** Only the size arithmetic: what the model would see, without touching pixels. */
export function planImage(width: number, height: number, cfg: VisionPreprocessConfig = SEED_VISION, opts: PreprocessOptions = {}) {
  const minSide = opts.minSide ?? 2;
  if (width < minSide || height < minSide) {
    throw new MediaError('too_small', `image of ${width}x${height} is below the ${minSide}-pixel minimum side`);
  }
  const resized = smartResize(height, width, {
    factor: cfg.factor,
    minPixels: opts.minPixels ?? cfg.minPixels,
    maxPixels: opts.maxPixels ?? cfg.maxPixels,
    maxAspectRatio: cfg.maxAspectRatio,
  });
  const rows = resized.height / cfg.factor;
  const cols = resized.width / cfg.factor;
  return { original: { width, height }, resized, tokenGrid: { rows, cols }, tokens: rows * cols };
}

/** Preprocess decoded RGB pixels. */
export function preprocessRgb(img: RgbImage, cfg: VisionPreprocessConfig = SEED_VISION, opts: PreprocessOptions = {}): PreprocessedImage {
  const plan = planImage(img.width, img.height, cfg, opts);
  const resized = resizeRgb(img, plan.resized.width, plan.resized.height, cfg.resample);
  const p = patchifyFrames([resized], cfg);
  return { ...plan, grid: p.grid, tokens: p.tokens, pixelValues: p.pixelValues, shape: p.shape };
}

/** Load, decode and preprocess an image from any supported source. */
export async function preprocessImage(
  source: MediaSource,
  cfg: VisionPreprocessConfig = SEED_VISION,
  opts: PreprocessOptions & LoadImageOptions = {},
): Promise<PreprocessedImage & { image: RgbImage }> {
  const image = await loadImage(source, opts);
  try {
    return { ...preprocessRgb(image, cfg, opts), image };
  } catch (e) {
    if (e instanceof MediaError && e.input === undefined) {
      throw new MediaError(e.code, e.message, typeof source === 'string' ? source.slice(0, 200) : `<${source instanceof URL ? source.href : 'buffer'}>`);
    }
    throw e;
  }
}
