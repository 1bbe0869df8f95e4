/**
 * Adapts `SeedVLModel` (src/models/seed_vl) to the runtime's GenerationModel.
 * The model keeps one KV cache of `maxBatch` rows × `maxLength` positions; a
 * sequence's cache is a row of it (a slot), taken at prefill and given back
 * when the sequence ends. A decode step feeds one token to each running row
 * (idle rows get none) and returns their logits in the order asked for.
 */
import { Tensor, tensor, tidy, noGrad, reshape, indexSelect } from '../tensor/index.ts';
import type { SeedVLModel } from '../models/seed_vl/model.ts';
import type { KVCache } from '../models/seed_vl/kv_cache.ts';
import type { ImageBatch } from '../models/seed_vl/inputs.ts';
import type { VisionInput } from '../processing/chat_inputs.ts';
import { releaseQuantized } from './quantize_model.ts';
import { ModelInputError, type ExtendItem, type GenerationModel, type PrefillInputs, type SequenceCache } from './model.ts';

export interface SeedVLRuntimeOptions {
  /** Rows of the shared KV cache = most sequences generating at once. */
  maxBatch: number;
  /** Positions per row (prompt + generation); at most max_position_embeddings. */
  maxLength: number;
  name?: string;
}

class SlotCache implements SequenceCache {
  private released = false;
  constructor(private readonly owner: SeedVLRuntime, readonly slot: number, readonly capacity: number) {}
  get length(): number {
    return this.owner.rowLength(this.slot);
  }
  dispose(): void {
    if (this.released) return;
    this.released = true;
    this.owner.release(this.slot);
  }
}

export class SeedVLRuntime implements GenerationModel {
  readonly name: string;
  readonly vocabSize: number;
  readonly maxSequenceLength: number;
  readonly acceptsVision = true;
  private pool: KVCache | null = null;
  private readonly free: number[];

  constructor(readonly model: SeedVLModel, readonly opts: SeedVLRuntimeOptions) {
    const l = model.config.language;
    this.name = opts.name ?? 'seed-vl';
    this.vocabSize = l.vocabSize;
    this.maxSequenceLength = Math.min(opts.maxLength, l.maxPositionEmbeddings);
    if (!Number.isInteger(opts.maxBatch) || opts.maxBatch < 1) throw new RangeError(`SeedVLRuntime: maxBatch must be a positive integer, got ${opts.maxBatch}`);
    this.free = Array.from({ length: opts.maxBatch }, (_, i) => opts.maxBatch - 1 - i);
    model.eval();
  }

  private cache(): KVCache {
    this.pool ??= this.model.createCache(this.opts.maxBatch, this.maxSequenceLength);
    return this.pool;
  }

  rowLength(slot: number): number {
    return this.pool ? this.pool.lengths[slot]! : 0;
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

  /** Every item's new tokens in one model call: the cache rows get different counts (0 for idle rows). */
  extend(items: readonly ExtendItem[]): Tensor {
    const pool = this.cache();
    const rowLengths = new Array<number>(this.opts.maxBatch).fill(0);
    const bySlot = new Array<number>(this.opts.maxBatch).fill(-1);
    items.forEach((it, i) => {
      const slot = (it.cache as SlotCache).slot;
      if (bySlot[slot] >= 0) throw new ModelInputError(`extend: cache row ${slot} appears twice`);
      if (it.inputs.inputIds.length === 0) throw new ModelInputError('extend: an item has no tokens');
      bySlot[slot] = i;
      rowLengths[slot] = it.inputs.inputIds.length;
    });
    // The model packs tokens (and images) row by row: feed them in slot order, map the logits back.
    const order = bySlot.filter((i) => i >= 0);
    const ids = new Int32Array(order.reduce((n, i) => n + items[i]!.inputs.inputIds.length, 0));
    let off = 0;
    for (const i of order) {
      ids.set(items[i]!.inputs.inputIds, off);
      off += items[i]!.inputs.inputIds.length;
    }
    return noGrad(() => tidy(() => {
      const images = imageBatch(order.flatMap((i) => items[i]!.inputs.vision ?? []));
      const logits = this.model.prefill(pool, { inputIds: ids, rowLengths, ...(images ? { images } : {}) }); // [items, V], slot order
      const inverse = new Array<number>(order.length);
      order.forEach((i, r) => (inverse[i] = r));
      return inverse.every((r, i) => r === i) ? logits : indexSelect(logits, 0, inverse);
    }));
  }

  dispose(): void {
    this.pool?.dispose();
    this.pool = null;
    releaseQuantized(this.model);
    this.model.dispose();
  }
}

/** Processed images/frames → the model's packed patch rows and grids. */
export function imageBatch(vision: readonly VisionInput[]): ImageBatch | undefined {
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
  return { pixelValues: tensor(data, [rows, dim]), grids: vision.map((v) => ({ h: v.grid.h, w: v.grid.w })) };
}
