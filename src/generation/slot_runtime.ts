/**
 * The part every model adapter shares: one KV cache of `maxBatch` rows, a
 * sequence's cache being one row (a slot) taken at prefill and given back
 * when the sequence ends, and `extend`, which feeds every running sequence's
 * new tokens to the model in one call (rows in slot order, idle rows get
 * none) and returns their logits in the order asked for. A model family only
 * says how to make its cache and how to run packed rows.
 */
import { Tensor, tensor, tidy, noGrad, reshape, indexSelect } from '../tensor/index.ts';
import type { VisionInput } from '../processing/chat_inputs.ts';
import { ModelInputError, type ExtendItem, type GenerationModel, type PrefillInputs, type SequenceCache } from './model.ts';

/** A model's multi-row KV cache, as the slot runtime uses it. */
export interface SlotPool {
  reset(slot: number): void;
  rowLength(slot: number): number;
  dispose(): void;
}

export interface SlotRuntimeOptions {
  /** Rows of the shared KV cache = most sequences generating at once. */
  maxBatch: number;
  /** Positions per row (prompt + generation); capped by the model's max positions. */
  maxLength: number;
  name?: string;
}

class SlotCache implements SequenceCache {
  private released = false;
  constructor(private readonly owner: SlotRuntime<SlotPool>, readonly slot: number, readonly capacity: number) {}
  get length(): number {
    return this.owner.rowLength(this.slot);
  }
  dispose(): void {
    if (this.released) return;
    this.released = true;
    this.owner.release(this.slot);
  }
}

export abstract class SlotRuntime<P extends SlotPool> implements GenerationModel {
  readonly acceptsVision = true;
  readonly maxSequenceLength: number;
  private pool: P | null = null;
  private readonly free: number[];

  constructor(readonly name: string, readonly vocabSize: number, maxPositions: number, readonly opts: SlotRuntimeOptions) {
    if (!Number.isInteger(opts.maxBatch) || opts.maxBatch < 1) throw new RangeError(`${name}: maxBatch must be a positive integer, got ${opts.maxBatch}`);
    this.maxSequenceLength = Math.min(opts.maxLength, maxPositions);
    this.free = Array.from({ length: opts.maxBatch }, (_, i) => opts.maxBatch - 1 - i);
  }

  /** Allocates the cache: `rows` × `length` positions. */
  protected abstract createPool(rows: number, length: number): P;

  /**
   * Runs the new tokens of the rows that have any (`ids` concatenated in slot
   * order, `rowLengths` per slot, 0 for idle rows) with their media, appending
   * to `pool`. Returns the last position's logits of each such row: [rows, V].
   */
  protected abstract runRows(pool: P, ids: Int32Array, rowLengths: number[], media: VisionInput[]): Tensor;

  /** Frees the model's weights (the cache is freed by dispose). */
  protected abstract disposeModel(): void;

  private cache(): P {
    this.pool ??= this.createPool(this.opts.maxBatch, this.maxSequenceLength);
    return this.pool;
  }

  rowLength(slot: number): number {
    return this.pool ? this.pool.rowLength(slot) : 0;
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
      const n = it.inputs.inputIds.length;
      if (bySlot[slot] >= 0) throw new ModelInputError(`extend: cache row ${slot} appears twice`);
      if (n === 0) throw new ModelInputError('extend: an item has no tokens');
      if (pool.rowLength(slot) + n > this.maxSequenceLength) {
        throw new ModelInputError(`extend: ${pool.rowLength(slot) + n} tokens exceed the ${this.maxSequenceLength}-token context`);
      }
      bySlot[slot] = i;
      rowLengths[slot] = n;
    });
    // The model packs tokens (and media) row by row: feed them in slot order, map the logits back.
    const order = bySlot.filter((i) => i >= 0);
    const ids = new Int32Array(order.reduce((n, i) => n + items[i]!.inputs.inputIds.length, 0));
    let off = 0;
    for (const i of order) {
      ids.set(items[i]!.inputs.inputIds, off);
      off += items[i]!.inputs.inputIds.length;
    }
    const media = order.flatMap((i) => items[i]!.inputs.vision ?? []);
    return noGrad(() => tidy(() => {
      const logits = this.runRows(pool, ids, rowLengths, media); // [items, V], slot order
      const inverse = new Array<number>(order.length);
      order.forEach((i, r) => (inverse[i] = r));
      return inverse.every((r, i) => r === i) ? logits : indexSelect(logits, 0, inverse);
    }));
  }

  dispose(): void {
    this.pool?.dispose();
    this.pool = null;
    this.disposeModel();
  }
}

/** Processed images (or whole videos) → packed patch rows and their (t, h, w) grids. */
export function packVision(vision: readonly VisionInput[]): { pixelValues: Tensor; grids: { t: number; h: number; w: number }[] } | undefined {
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
