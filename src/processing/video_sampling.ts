/**
 * Seed1.5-VL dynamic frame-resolution sampling (spec §4, cookbook
 * `SeedVLInfer.preprocess_video`): sample at a task-dependent rate with at least 16
 * frames, pick the largest per-frame token level from {640, 512, 384, 256, 160, 128}
 * that keeps the video under 81,920 tokens, and when even 128 does not fit, drop
 * frames uniformly across the whole video. Every frame is preceded by the text
 * `[t second]`. Pure arithmetic: no decoding here.
 */
import { MediaError } from './errors.ts';
import { formatRound1, linspaceIndices } from './numeric.ts';
import { smartResize, type ResizedSize } from './smart_resize.ts';

export const SEED_TOKEN_LEVELS: readonly number[] = [640, 512, 384, 256, 160, 128];
export const SEED_VIDEO_TOKEN_BUDGET = 81920;
export const SEED_MIN_FRAMES = 16;

/** Sampling rate by task (spec §4.1). */
export type VideoTask = 'general' | 'fine_grained' | 'counting' | 'motion';
export const TASK_FPS: Record<VideoTask, number> = { general: 1, fine_grained: 2, counting: 5, motion: 5 };

export function fpsForTask(task: VideoTask = 'general'): number {
  return TASK_FPS[task];
}

export interface VideoSamplingOptions {
  /** Frames per second to sample; overrides `task`. */
  fps?: number;
  task?: VideoTask;
  minFrames?: number;
  tokenBudget?: number;
  /** Token levels per frame, largest first. */
  levels?: readonly number[];
  /** Resize factor (28 for Seed). */
  factor?: number;
  /** Minimum pixels per frame (cookbook: 4·28²). */
  minPixels?: number;
  /** Optional cap on pixels per frame, below the level's own budget (level·factor²). */
  maxPixels?: number;
  maxAspectRatio?: number;
}

export interface PlannedFrame {
  /** Frame index in the source (for a frame list, the position in the list). */
  index: number;
  /** Seconds, rounded to 0.1 like Python round(t, 1). */
  t: number;
  /** The text placed before the frame, e.g. "[1.5 second]". */
  timestamp: string;
}

export interface VideoPlan {
  frames: PlannedFrame[];
  /** The chosen per-frame token level (an upper bound). */
  level: number;
  /** Common size of every sampled frame. */
  resized: ResizedSize;
  /** Actual LLM tokens per frame: (h/factor)·(w/factor) ≤ level. */
  tokensPerFrame: number;
  /** Frame tokens of the whole video; timestamps are not counted (as in the cookbook). */
  totalTokens: number;
  /** The sampling rate that was asked for. */
  requestedFps: number;
  /** True when frames were dropped because even the smallest level did not fit. */
  subsampled: boolean;
}

/** The timestamp text, exactly as the cookbook writes it. */
export function formatTimestamp(seconds: number): string {
  return `[${formatRound1(seconds)} second]`;
}

interface Resolved {
  minFrames: number;
  budget: number;
  levels: readonly number[];
  factor: number;
  minPixels: number;
  maxPixels: number;
  maxAspectRatio: number;
}

function resolve(opts: VideoSamplingOptions): Resolved {
  const levels = opts.levels ?? SEED_TOKEN_LEVELS;
  if (levels.length === 0) throw new MediaError('invalid_input', 'at least one token level is needed');
  const factor = opts.factor ?? 28;
  return {
    minFrames: opts.minFrames ?? SEED_MIN_FRAMES,
    budget: opts.tokenBudget ?? SEED_VIDEO_TOKEN_BUDGET,
    levels,
    factor,
    minPixels: opts.minPixels ?? 4 * factor * factor,
    maxPixels: opts.maxPixels ?? Infinity,
    maxAspectRatio: opts.maxAspectRatio ?? 200,
  };
}

/**
 * Choose the level, and drop frames uniformly when the smallest level still does not
 * fit. `positions` are indices into whatever is being sampled.
 */
function chooseLevel(positions: number[], r: Resolved): { positions: number[]; level: number; subsampled: boolean } {
  const last = r.levels[r.levels.length - 1]!;
  for (const level of r.levels) {
    if (positions.length * level > r.budget) {
      if (level === last) {
        // Written as the cookbook computes it: int(budget / (level·f·f) · f · f).
        const k = Math.trunc((r.budget / (level * r.factor * r.factor)) * r.factor * r.factor);
        const sel = linspaceIndices(0, positions.length - 1, k);
        return { positions: sel.map((s) => positions[s]!), level, subsampled: true };
      }
      continue;
    }
    return { positions, level, subsampled: false };
  }
  /* c8 ignore next */
  return { positions, level: last, subsampled: false };
}

function sizeFor(width: number, height: number, level: number, r: Resolved): ResizedSize {
  return smartResize(height, width, {
    factor: r.factor,
    minPixels: r.minPixels,
    maxPixels: Math.max(r.minPixels, Math.min(level * r.factor * r.factor, r.maxPixels)),
    maxAspectRatio: r.maxAspectRatio,
  });
}

/** Plan sampling for a decoded video of `totalFrames` frames at `nativeFps`. */
export function planVideoSampling(totalFrames: number, nativeFps: number, width: number, height: number, opts: VideoSamplingOptions = {}): VideoPlan {
  if (!(Number.isInteger(totalFrames) && totalFrames >= 1)) throw new MediaError('invalid_input', `video has no frames (${totalFrames})`);
  if (!(nativeFps > 0 && Number.isFinite(nativeFps))) throw new MediaError('invalid_input', `video frame rate must be positive, got ${nativeFps}`);
  const r = resolve(opts);
  const fps = opts.fps ?? fpsForTask(opts.task);
  if (!(fps > 0 && Number.isFinite(fps))) throw new MediaError('invalid_input', `sampling fps must be positive, got ${fps}`);
  const n = Math.min(Math.max(Math.ceil((totalFrames / nativeFps) * fps), r.minFrames), totalFrames);
  const idx = linspaceIndices(0, totalFrames - 1, n);
  const chosen = chooseLevel(idx, r);
  const resized = sizeFor(width, height, chosen.level, r);
  const tokensPerFrame = (resized.height / r.factor) * (resized.width / r.factor);
  const frames = chosen.positions.map((i) => {
    const t = i / nativeFps;
    return { index: i, t: Number(formatRound1(t)), timestamp: formatTimestamp(t) };
  });
  return { frames, level: chosen.level, resized, tokensPerFrame, totalTokens: tokensPerFrame * frames.length, requestedFps: fps, subsampled: chosen.subsampled };
}

/**
 * Plan for a caller-supplied list of frames with timestamps (seconds): every frame is
 * kept unless the smallest level does not fit, then frames are dropped uniformly.
 */
export function planFrameList(timestamps: readonly number[], width: number, height: number, opts: Omit<VideoSamplingOptions, 'fps' | 'task' | 'minFrames'> = {}): VideoPlan {
  if (timestamps.length === 0) throw new MediaError('invalid_input', 'frame list is empty');
  for (let i = 0; i < timestamps.length; i++) {
    const t = timestamps[i]!;
    if (!(t >= 0 && Number.isFinite(t))) throw new MediaError('invalid_input', `frame ${i} has an invalid timestamp ${t}`);
    if (i > 0 && t < timestamps[i - 1]!) throw new MediaError('invalid_input', `frame timestamps must not decrease (frame ${i}: ${t} < ${timestamps[i - 1]})`);
  }
  const r = resolve(opts);
  const chosen = chooseLevel(timestamps.map((_, i) => i), r);
  const resized = sizeFor(width, height, chosen.level, r);
  const tokensPerFrame = (resized.height / r.factor) * (resized.width / r.factor);
  const frames = chosen.positions.map((i) => ({ index: i, t: Number(formatRound1(timestamps[i]!)), timestamp: formatTimestamp(timestamps[i]!) }));
  const span = timestamps[timestamps.length - 1]! - timestamps[0]!;
  return {
    frames,
    level: chosen.level,
    resized,
    tokensPerFrame,
    totalTokens: tokensPerFrame * frames.length,
    requestedFps: span > 0 ? (timestamps.length - 1) / span : 0,
    subsampled: chosen.subsampled,
  };
}
