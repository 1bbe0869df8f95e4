/**
 * Adapts QwenVLModel to the generation runtime's GenerationModel
 * (src/generation/model.ts), as SeedVLRuntime does for Seed: one KV cache of
 * `maxBatch` rows; a sequence's cache is a row (slot), taken at prefill and
 * given back when the sequence ends. Each row also keeps its next M-RoPE
 * position (QwenCache.next), so decoding continues after the prompt's vision
 * blocks exactly as the reference does.
 */
import { tensor, tidy, noGrad, reshape, indexSelect, type Tensor } from '../../tensor/index.ts';
import type { VisionInput } from '../../processing/chat_inputs.ts';
import { ModelInputError, type ExtendItem, type GenerationModel, type PrefillInputs, type SequenceCache } from '../../generation/model.ts';
import type { QwenVLModel, QwenCache, VisionBatch } from './model.ts';

export interface QwenRuntimeOptions {
  /** Rows of the shared KV cache = most sequences generating at once. */
  maxBatch: number;
  /** Positions per row (prompt + generation). */
  maxLength: number;
  name?: string;
}

class SlotCache implements SequenceCache {
  private released = false;
  constructor(private readonly owner: QwenVLRuntime, readonly slot: number, readonly capacity: number) {}
  get length(): number {
    return this.owner.rowLength(this.slot);
  }
  dispose(): void {
    if (this.released) return;
    this.released = true;
    this.owner.release(this.slot);
  }
}

export class QwenVLRuntime implements GenerationModel {
  readonly name: string;
  readonly vocabSize: number;
  readonly maxSequenceLength: number;
  readonly acceptsVision = true;
  private pool: QwenCache | null = null;
  private readonly free: number[];

  constructor(readonly model: QwenVLModel, readonly opts: QwenRuntimeOptions) {
    const t = model.config.text;
    this.name = opts.name ?? model.config.family;
    this.vocabSize = t.vocabSize;
    this.maxSequenceLength = Math.min(opts.maxLength, t.maxPositionEmbeddings);
    if (!Number.isInteger(opts.maxBatch) || opts.maxBatch < 1) throw new RangeError(`QwenVLRuntime: maxBatch must be a positive integer, got ${opts.maxBatch}`);
    this.free = Array.from({ length: opts.maxBatch }, (_, i) => opts.maxBatch - 1 - i);
  }

  private cache(): QwenCache {
    this.pool ??= this.model.createCache(this.opts.maxBatch, this.maxSequenceLength);
    return this.pool;
  }

  rowLength(slot: number): number {
    return this.pool ? this.pool.kv.lengths[slot]! : 0;
  }

  release(slot: number): void {
    this.pool?.reset(slot);
    this.free.push(slot);
  }

  createCache(capacity: number): SequenceCache {
    const slot = this.free.pop();
    if (slot === undefined) throw new ModelInputError(`all ${this.opts.maxBatch} cache rows are in use`);
    this.cache().reset(slot);
    return new SlotCache(this, slot, Math.min(capacity, this.maxSequenceLength));
  }

  prefill(inputs: PrefillInputs, c: SequenceCache): Tensor {
    if (c.length !== 0) throw new ModelInputError('prefill: the cache is not empty');
    return noGrad(() => tidy(() => reshape(this.extend([{ cache: c, inputs }]), [this.vocabSize])));
  }

  decode(tokens: Int32Array, caches: readonly SequenceCache[]): Tensor {
    return this.extend(caches.map((cache, b) => ({ cache, inputs: { inputIds: tokens.subarray(b, b + 1) } })));
  }

  /** Every item's new tokens in one model call (cache rows in slot order; idle rows get 0 tokens). */
  extend(items: readonly ExtendItem[]): Tensor {
    const pool = this.cache();
    const rowLengths = new Array<number>(this.opts.maxBatch).fill(0);
    const bySlot = new Array<number>(this.opts.maxBatch).fill(-1);
    items.forEach((it, i) => {
      const slot = (it.cache as SlotCache).slot;
      if (bySlot[slot] >= 0) throw new ModelInputError(`extend: cache row ${slot} appears twice`);
      if (it.inputs.inputIds.length === 0) throw new ModelInputError('extend: an item has no tokens');
      if (pool.kv.lengths[slot]! + it.inputs.inputIds.length > this.maxSequenceLength) {
        throw new ModelInputError(`extend: ${pool.kv.lengths[slot]! + it.inputs.inputIds.length} tokens exceed the ${this.maxSequenceLength}-token context`);
      }
      bySlot[slot] = i;
      rowLengths[slot] = it.inputs.inputIds.length;
    });
    const order = bySlot.filter((i) => i >= 0);
    const ids = new Int32Array(order.reduce((n, i) => n + items[i]!.inputs.inputIds.length, 0));
    let off = 0;
    for (const i of order) {
      ids.set(items[i]!.inputs.inputIds, off);
      off += items[i]!.inputs.inputIds.length;
    }
    const media = order.flatMap((i) => items[i]!.inputs.vision ?? []);
    if (media.some((v) => v.kind === 'video_frame')) throw new ModelInputError(`${this.name}: single video frames are not supported; give the video as one part (Qwen templates expand whole videos)`);
    return noGrad(() => tidy(() => {
      const images = imageBatch(media.filter((v) => v.kind === 'image'));
      const videos = videoBatch(media.filter((v) => v.kind === 'video'));
      try {
        const logits = this.model.prefill(pool, { inputIds: ids, rowLengths, ...(images ? { images } : {}), ...(videos ? { videos } : {}) });
        const inverse = new Array<number>(order.length);
        order.forEach((i, r) => (inverse[i] = r));
        return inverse.every((r, i) => r === i) ? logits : indexSelect(logits, 0, inverse);
      } catch (e) {
        if (e instanceof RangeError) throw new ModelInputError(e.message);
        throw e;
      }
    }));
  }

  dispose(): void {
    this.pool?.dispose();
    this.pool = null;
    this.model.dispose();
  }
}

/** Processed images → packed patch rows and (t, h, w) grids. */
export function imageBatch(vision: readonly VisionInput[]): VisionBatch | undefined {
  if (vision.length === 0) return undefined;
  const rows = vision.reduce((n, v) => n + v.shape[0], 0);
  const dim = vision[0]!.shape[1];
  const data = new Float32Array(rows * dim);
  let off = 0;
  for (const v of vision) {
    if (v.shape[1] !== dim) throw new ModelInputError(`image patch rows of ${v.shape[1]} and ${dim} values cannot be mixed`);
    data.set(v.pixelValues, off);
    off += v.pixelValues.length;
  }
  return { pixelValues: tensor(data, [rows, dim]), grids: vision.map((v) => ({ t: v.grid.t, h: v.grid.h, w: v.grid.w })) };
}

/** Processed whole videos → packed patch rows, (t, h, w) grids and seconds per temporal patch. */
export function videoBatch(vision: readonly VisionInput[]): VisionBatch | undefined {
  const b = imageBatch(vision);
  if (!b) return undefined;
  return { ...b, secondPerGrid: vision.map((v) => v.secondPerGrid ?? 1) };
}
