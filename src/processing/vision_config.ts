/**
 * Per-model image preprocessing settings. The same pipeline serves Seed-ViT and the
 * Qwen families; only these numbers differ. Seed's mean/std are not disclosed
 * (spec §3.4), so the Seed preset is a project default and stays configurable.
 */
import type { ResampleFilter } from './resample.ts';
import { SEED_MAX_PIXELS, SEED_MIN_PIXELS } from './smart_resize.ts';

export interface VisionPreprocessConfig {
  /** ViT patch side in pixels (14 Seed/Qwen2/2.5, 16 Qwen3). */
  patchSize: number;
  /** Side of the patch-merge window (2: 2×2 patches become one LLM token). */
  mergeSize: number;
  /** Frames per temporal patch (1 for Seed, 2 for Qwen: a still image is repeated). */
  temporalPatchSize: number;
  /** Resize factor; sides become multiples of it. Normally patchSize·mergeSize. */
  factor: number;
  minPixels: number;
  maxPixels: number;
  maxAspectRatio: number;
  resample: ResampleFilter;
  /** Multiplier applied to 0..255 values before normalisation (1/255). */
  rescaleFactor: number;
  mean: [number, number, number];
  std: [number, number, number];
}

export const CLIP_MEAN: [number, number, number] = [0.48145466, 0.4578275, 0.40821073];
export const CLIP_STD: [number, number, number] = [0.26862954, 0.26130258, 0.27577711];

const base = {
  mergeSize: 2,
  maxAspectRatio: 200,
  rescaleFactor: 1 / 255,
} as const;

/** Seed1.5-VL: 14-px patches, no temporal patch, bilinear (Report), limits from the cookbook. */
export const SEED_VISION: VisionPreprocessConfig = {
  ...base,
  patchSize: 14,
  temporalPatchSize: 1,
  factor: 28,
  minPixels: SEED_MIN_PIXELS,
  maxPixels: SEED_MAX_PIXELS,
  resample: 'bilinear',
  // Project default: CLIP statistics, as the Qwen oracles use; replace when weights say otherwise.
  mean: CLIP_MEAN,
  std: CLIP_STD,
};

/** `Qwen2VLImageProcessor` class defaults (Qwen2-VL and Qwen2.5-VL). */
export const QWEN2_VL_VISION: VisionPreprocessConfig = {
  ...base,
  patchSize: 14,
  temporalPatchSize: 2,
  factor: 28,
  minPixels: 56 * 56,
  maxPixels: 28 * 28 * 1280,
  resample: 'bicubic',
  mean: CLIP_MEAN,
  std: CLIP_STD,
};

export const QWEN2_5_VL_VISION: VisionPreprocessConfig = { ...QWEN2_VL_VISION };

/** Qwen3-VL published preprocessor_config.json. */
export const QWEN3_VL_VISION: VisionPreprocessConfig = {
  ...base,
  patchSize: 16,
  temporalPatchSize: 2,
  factor: 32,
  minPixels: 65536,
  maxPixels: 16777216,
  resample: 'bicubic',
  mean: [0.5, 0.5, 0.5],
  std: [0.5, 0.5, 0.5],
};

export const VISION_PRESETS = {
  seed: SEED_VISION,
  qwen2_vl: QWEN2_VL_VISION,
  qwen2_5_vl: QWEN2_5_VL_VISION,
  qwen3_vl: QWEN3_VL_VISION,
} as const;

export type VisionPresetName = keyof typeof VISION_PRESETS;

/** Read a Hugging Face `preprocessor_config.json` into our config (unknown keys ignored). */
export function visionConfigFromHf(json: Record<string, unknown>, fallback: VisionPreprocessConfig = QWEN2_VL_VISION): VisionPreprocessConfig {
  const num = (k: string): number | undefined => (typeof json[k] === 'number' ? (json[k] as number) : undefined);
  const size = (json['size'] ?? {}) as Record<string, unknown>;
  const patchSize = num('patch_size') ?? fallback.patchSize;
  const mergeSize = num('merge_size') ?? fallback.mergeSize;
  const triple = (k: string, d: [number, number, number]): [number, number, number] => {
    const v = json[k];
    return Array.isArray(v) && v.length === 3 && v.every((x) => typeof x === 'number') ? (v as [number, number, number]) : d;
  };
  const resampleCode = num('resample');
  return {
    patchSize,
    mergeSize,
    temporalPatchSize: num('temporal_patch_size') ?? fallback.temporalPatchSize,
    factor: patchSize * mergeSize,
    minPixels: (typeof size['shortest_edge'] === 'number' ? (size['shortest_edge'] as number) : undefined) ?? num('min_pixels') ?? fallback.minPixels,
    maxPixels: (typeof size['longest_edge'] === 'number' ? (size['longest_edge'] as number) : undefined) ?? num('max_pixels') ?? fallback.maxPixels,
    maxAspectRatio: fallback.maxAspectRatio,
    // PIL codes: 2 = BILINEAR, 3 = BICUBIC.
    resample: resampleCode === 2 ? 'bilinear' : resampleCode === 3 ? 'bicubic' : fallback.resample,
    rescaleFactor: num('rescale_factor') ?? fallback.rescaleFactor,
    mean: triple('image_mean', fallback.mean),
    std: triple('image_std', fallback.std),
  };
}
