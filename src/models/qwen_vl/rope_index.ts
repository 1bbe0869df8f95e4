/**
 * M-RoPE position ids (`get_rope_index`, open-models.md §4.7, §5.3, §6.4).
 *
 * Every token gets (t, h, w) positions. Text runs count up on all three axes;
 * a vision block of T × H × W merged cells starting at `st` gets
 * (st + t_id, st + hi, st + wi) in raster order, where t_id is the temporal
 * index — scaled to absolute time for Qwen2.5-VL videos
 * (trunc(ti · tokens_per_second · second_per_grid_t), in float32), and always
 * 0 for Qwen3-VL, whose videos are split into one block per temporal patch
 * with textual timestamps between them.
 *
 * Where text resumes after a block differs between implementations:
 * - 'transformers' (transformers 5.x, the golden tensors): st + max(H, W);
 * - 'original' (Qwen's code, transformers ≤ 4.5x): max(every position so far) + 1.
 * They agree except for Qwen2/2.5-VL videos whose temporal extent exceeds max(H, W).
 * Generation continues at max(all prompt positions) + 1 in both.
 */
import type { QwenFamily } from './config.ts';
import type { Grid3 } from './vision_layout.ts';

export type PositionConvention = 'transformers' | 'original';

export interface RopeIndexSpec {
  family: QwenFamily;
  mergeSize: number;
  tokensPerSecond: number;
  imageTokenId: number;
  videoTokenId: number;
  convention: PositionConvention;
}

/** The media of one row, in order of appearance. */
export interface RowMedia {
  images: readonly Grid3[];
  videos: readonly Grid3[];
  /** Seconds per temporal patch of each video (Qwen2.5-VL: temporal_patch_size / sampled fps). */
  secondPerGrid?: readonly number[];
}

export interface RowPositions {
  /** [3, n] axis-major: t positions, then h, then w. */
  positions: Int32Array;
  /** max(positions) + 1: where generation continues. */
  next: number;
}

/** Vision tokens one block holds: t·h·w / merge². */
export const blockTokens = (g: Grid3, merge: number): number => (g.t * g.h * g.w) / (merge * merge);

/** Hands out the vision blocks of a batch in order of appearance (images and videos separately). */
export class MediaCursor {
  private nextImage = 0;
  private nextVideo = 0;
  private readonly videoBlocks: { grid: Grid3; interval: number }[] = [];

  constructor(readonly media: RowMedia, readonly spec: RopeIndexSpec) {
    const qwen3 = spec.family === 'qwen3_vl' || spec.family === 'qwen3_vl_moe';
    media.videos.forEach((g, i) => {
      // Qwen3 splits each video into single temporal patches (t = 1), one block each.
      if (qwen3) for (let f = 0; f < g.t; f++) this.videoBlocks.push({ grid: { t: 1, h: g.h, w: g.w }, interval: 0 });
      else {
        const spg = media.secondPerGrid?.[i] ?? 1;
        const interval = spec.family === 'qwen2_5_vl' ? Math.fround(spec.tokensPerSecond * Math.fround(spg)) : 1;
        this.videoBlocks.push({ grid: g, interval });
      }
    });
  }

  next(isImage: boolean): { grid: Grid3; interval: number } | null {
    if (isImage) return this.nextImage < this.media.images.length ? { grid: this.media.images[this.nextImage++], interval: 1 } : null;
    return this.nextVideo < this.videoBlocks.length ? this.videoBlocks[this.nextVideo++] : null;
  }

  /** Throws if some media had no placeholders. */
  finish(): void {
    if (this.nextImage !== this.media.images.length || this.nextVideo !== this.videoBlocks.length) {
      const qwen3 = this.spec.family === 'qwen3_vl' || this.spec.family === 'qwen3_vl_moe';
      throw new RangeError(
        `M-RoPE: ${this.media.images.length} image(s) and ${this.media.videos.length} video(s) given, but the tokens hold placeholders for ` +
          `${this.nextImage} image(s) and ${this.nextVideo} ${qwen3 ? 'video frame group(s)' : 'video(s)'}`,
      );
    }
  }
}

/**
 * Positions of one row's tokens `ids`, the first at `start`; its vision blocks
 * come from `cursor`. Throws naming the position when a placeholder run does not match its grid.
 */
export function rowPositions(ids: ArrayLike<number>, cursor: MediaCursor, start = 0): RowPositions {
  const spec = cursor.spec;
  const n = ids.length;
  const pos = new Int32Array(3 * n);
  const m = spec.mergeSize;
  let st = start;
  let maxPos = start - 1;
  let i = 0;
  while (i < n) {
    const id = ids[i];
    if (id !== spec.imageTokenId && id !== spec.videoTokenId) {
      pos[i] = pos[n + i] = pos[2 * n + i] = st;
      maxPos = Math.max(maxPos, st);
      st++;
      i++;
      continue;
    }
    const isImage = id === spec.imageTokenId;
    const kind = isImage ? 'image' : 'video';
    const block = cursor.next(isImage);
    if (!block) throw new RangeError(`M-RoPE: ${kind} placeholder at position ${i} has no ${kind} left to fill it`);
    const { grid, interval } = block;
    const T = grid.t, H = grid.h / m, W = grid.w / m;
    const len = T * H * W;
    for (let j = 0; j < len; j++) {
      if (ids[i + j] !== id) {
        throw new RangeError(`M-RoPE: the ${kind} block at position ${i} has grid (t=${grid.t}, h=${grid.h}, w=${grid.w}) = ${len} tokens, but ${j} placeholders follow`);
      }
    }
    let j = i;
    for (let ti = 0; ti < T; ti++) {
      const tid = isImage ? ti : Math.trunc(Math.fround(ti * interval));
      for (let hi = 0; hi < H; hi++) {
        for (let wi = 0; wi < W; wi++) {
          pos[j] = st + tid;
          pos[n + j] = st + hi;
          pos[2 * n + j] = st + wi;
          maxPos = Math.max(maxPos, st + tid, st + hi, st + wi);
          j++;
        }
      }
    }
    st = spec.convention === 'transformers' ? st + Math.max(H, W) : maxPos + 1;
    i += len;
  }
  return { positions: pos, next: maxPos + 1 };
}
