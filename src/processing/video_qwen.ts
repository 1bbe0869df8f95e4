/**
 * Video inputs for the Qwen-VL families (open-models.md §5.3, §6.4–6.5): which
 * frames to take, one size for all of them, temporal patches of two frames, and
 * the per-patch times the templates and M-RoPE need.
 *
 * - Qwen2-VL / Qwen2.5-VL follow `qwen-vl-utils` (fps 2, an even frame count,
 *   `round(torch.linspace)` indices, a per-frame pixel budget from a 128k-token
 *   total) and give the whole video one `<|video_pad|>` block of grid
 *   [n/2, h/14, w/14]; Qwen2.5 adds `second_per_grid_ts = 2 / sampled_fps`.
 * - Qwen3-VL follows transformers' `Qwen3VLVideoProcessor` (fps 2, ≥ 4 frames,
 *   `numpy.linspace(...).round()` indices, a smart_resize whose budget counts the
 *   frames) and writes `<t seconds>` before each temporal patch, t being the mean
 *   time of its two frames.
 */
import { MediaError } from './errors.ts';
import { roundHalfEven, linspaceIndices } from './numeric.ts';
import { patchifyFrames } from './patchify.ts';
import { resizeRgb, type RgbImage } from './resample.ts';
import { smartResize, type ResizedSize } from './smart_resize.ts';
import type { VisionPreprocessConfig } from './vision_config.ts';

export type QwenVideoStyle = 'qwen2_vl' | 'qwen2_5_vl' | 'qwen3_vl';

export interface QwenVideoOptions {
  /** Sampling rate in frames per second (default 2, both references). */
  fps?: number;
  minFrames?: number;
  maxFrames?: number;
  /** Per-video pixel limits (Qwen3: over all frames; Qwen2/2.5: per frame, overriding the budget rule). */
  minPixels?: number;
  maxPixels?: number;
}

export interface QwenVideoPlan {
  /** Source frame indices, sorted; the count is even for Qwen2/2.5. */
  indices: number[];
  /** Seconds of each sampled frame (index / native fps). */
  times: number[];
  /** Frames per second actually sampled: n / total · native fps. */
  sampledFps: number;
  resized: ResizedSize;
}

/** The processed video: patches of temporal size 2 and what the template and M-RoPE need. */
export interface QwenVideo {
  pixelValues: Float32Array;
  shape: [number, number];
  grid: { t: number; h: number; w: number };
  /** LLM tokens of the whole video: t·h·w / merge². */
  tokens: number;
  /** LLM tokens per temporal patch: h·w / merge². */
  tokensPerGroup: number;
  /** Mean time in seconds of each temporal patch's two frames (Qwen3's `<t seconds>`). */
  groupTimes: number[];
  /** Seconds per temporal patch: temporal_patch_size / sampled fps (Qwen2.5-VL M-RoPE). */
  secondPerGrid: number;
  resized: { width: number; height: number };
}

/** `torch.linspace(start, end, n)`: the upper half is filled from the end (open-models.md §6.5). */
export function torchLinspace(start: number, end: number, n: number): number[] {
  if (n === 1) return [start];
  const step = (end - start) / (n - 1);
  const half = Math.floor(n / 2);
  return Array.from({ length: n }, (_, i) => (i < half ? start + i * step : end - (n - 1 - i) * step));
}

const floorEven = (x: number) => Math.floor(x / 2) * 2;
const ceilEven = (x: number) => Math.ceil(x / 2) * 2;

/**
 * transformers 5.18 `video_processing_qwen3_vl.smart_resize`: like the image
 * version, but the pixel budget counts round(num_frames / 2)·2 frames.
 */
export function qwen3VideoSmartResize(numFrames: number, height: number, width: number, o: { temporalFactor?: number; factor: number; minPixels: number; maxPixels: number }): ResizedSize {
  const tf = o.temporalFactor ?? 2;
  const f = o.factor;
  if (numFrames < tf) throw new MediaError('invalid_input', `a video needs at least ${tf} frames, got ${numFrames}`);
  if (height < 1 || width < 1) throw new MediaError('too_small', `frame size must be at least 1x1, got ${width}x${height}`);
  if (height < f || width < f) {
    // A side below the factor is first scaled up to it, keeping the aspect (int() truncation as in Python).
    const scale = Math.max(f / height, f / width);
    [height, width] = [Math.trunc(height * scale), Math.trunc(width * scale)];
  }
  let h = Math.max(f, roundHalfEven(height / f) * f);
  let w = Math.max(f, roundHalfEven(width / f) * f);
  const t = roundHalfEven(numFrames / tf) * tf;
  if (t * h * w > o.maxPixels) {
    const beta = Math.sqrt((numFrames * height * width) / o.maxPixels);
    h = Math.max(f, Math.floor(height / beta / f) * f);
    w = Math.max(f, Math.floor(width / beta / f) * f);
  } else if (t * h * w < o.minPixels) {
    const beta = Math.sqrt(o.minPixels / (numFrames * height * width));
    h = Math.ceil((height * beta) / f) * f;
    w = Math.ceil((width * beta) / f) * f;
  }
  return { height: h, width: w };
}

/** One size for all `n` sampled frames of a `width`×`height` video. */
export function qwenVideoSize(style: QwenVideoStyle, n: number, width: number, height: number, cfg: VisionPreprocessConfig, o: QwenVideoOptions = {}): ResizedSize {
  const factor = cfg.factor;
  const minPixels = o.minPixels ?? 128 * factor * factor;
  if (style === 'qwen3_vl') {
    return qwen3VideoSmartResize(Math.max(2, n), height, width, { factor, minPixels, maxPixels: o.maxPixels ?? 768 * factor * factor });
  }
  // qwen-vl-utils: a 128k-token total shared by the frames, capped at 768 tokens per frame.
  const total = 128000 * factor * factor * 0.9;
  const maxPixels = o.maxPixels ?? Math.max(Math.min(768 * factor * factor, (total / Math.max(n, 1)) * 2), Math.trunc(minPixels * 1.05));
  return smartResize(height, width, { factor, minPixels, maxPixels, maxAspectRatio: cfg.maxAspectRatio });
}

/** Frames and size for a video of `totalFrames` at `nativeFps` (see the file comment for which reference each style follows). */
export function planQwenVideo(style: QwenVideoStyle, totalFrames: number, nativeFps: number, width: number, height: number, cfg: VisionPreprocessConfig, o: QwenVideoOptions = {}): QwenVideoPlan {
  if (!(totalFrames >= 1) || !(nativeFps > 0)) throw new MediaError('invalid_input', `video has ${totalFrames} frames at ${nativeFps} fps`);
  const fps = o.fps ?? 2;
  let indices: number[];
  if (style === 'qwen3_vl') {
    const n = Math.min(Math.max(Math.floor((totalFrames / nativeFps) * fps), o.minFrames ?? 4), o.maxFrames ?? 768, totalFrames);
    indices = linspaceIndices(0, totalFrames - 1, n);
  } else {
    const minF = ceilEven(o.minFrames ?? 4);
    const maxF = floorEven(Math.min(o.maxFrames ?? 768, totalFrames));
    const n = floorEven(Math.min(Math.min(Math.max((totalFrames / nativeFps) * fps, minF), maxF), totalFrames));
    if (n < 2) throw new MediaError('invalid_input', `a Qwen video needs at least 2 frames, got ${totalFrames}`);
    indices = torchLinspace(0, totalFrames - 1, n).map(roundHalfEven);
  }
  const resized = qwenVideoSize(style, indices.length, width, height, cfg, o);
  const sampledFps = (indices.length / totalFrames) * nativeFps;
  return { indices, times: indices.map((i) => i / nativeFps), sampledFps, resized };
}

/**
 * Patchify sampled frames (already at one size, a multiple of the factor) in
 * temporal patches of `cfg.temporalPatchSize`; an odd count repeats the last
 * frame, as the processors do. `times` are the frames' seconds.
 */
export function patchifyQwenVideo(frames: RgbImage[], times: readonly number[], sampledFps: number, cfg: VisionPreprocessConfig): QwenVideo {
  if (frames.length === 0) throw new MediaError('invalid_input', 'a video needs at least one frame');
  if (times.length !== frames.length) throw new RangeError(`patchifyQwenVideo: ${frames.length} frames but ${times.length} times`);
  const T = cfg.temporalPatchSize;
  const p = patchifyFrames(frames, cfg);
  const padTimes = times.slice();
  while (padTimes.length % T !== 0 || padTimes.length < T) padTimes.push(padTimes[padTimes.length - 1]!);
  const groupTimes: number[] = [];
  // Qwen3VLProcessor._calculate_timestamps: (first + last of each group) / 2.
  for (let g = 0; g < padTimes.length; g += T) groupTimes.push((padTimes[g]! + padTimes[g + T - 1]!) / 2);
  const m2 = cfg.mergeSize * cfg.mergeSize;
  return {
    pixelValues: p.pixelValues, shape: p.shape, grid: p.grid, tokens: p.tokens,
    tokensPerGroup: (p.grid.h * p.grid.w) / m2, groupTimes, secondPerGrid: T / sampledFps,
    resized: { width: frames[0]!.width, height: frames[0]!.height },
  };
}

/** Resize native frames to `size` with the config's filter (Pillow-exact; the references use torchvision). */
export function resizeFrames(frames: readonly RgbImage[], size: ResizedSize, cfg: VisionPreprocessConfig): RgbImage[] {
  return frames.map((f) => (f.width === size.width && f.height === size.height ? f : resizeRgb(f, size.width, size.height, cfg.resample)));
}
