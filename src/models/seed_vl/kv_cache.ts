/**
 * Key/value cache for incremental decoding: per layer, preallocated
 * k and v of [B, Hkv, Smax, D] (the layout `attentionDecode` reads), and the
 * number of valid positions of each of the B rows (sequences).
 *
 * A forward step through the cache works in three phases:
 *   begin(newLens)  — row b will receive newLens[b] tokens this step (0 = idle row);
 *                     the step's tokens are packed row after row, [T = Σ newLens];
 *   attend(l, …)    — per layer: copy the new k/v into rows' slots, attend;
 *   commit()        — advance the row lengths (after all layers ran).
 * The generation runtime builds on this class; it is inference-only (no gradient).
 */
import { Tensor, zeros, keep, copyInto } from '../../tensor/index.ts';
import { narrow, permute, unsqueeze, squeeze, cat } from '../../tensor/ops/view.ts';
import { attentionDecode } from '../../tensor/ops/attention.ts';
import type { KVCacheLike } from '../../nn/attention.ts';

export interface KVCacheOptions {
  numLayers: number;
  batchSize: number;
  numKvHeads: number;
  headDim: number;
  /** Positions per row (prompt + generated tokens). */
  maxLength: number;
  dtype?: 'float32' | 'float64';
}

interface Step {
  newLens: number[];
  /** Row b's tokens are [starts[b], starts[b] + newLens[b]) of the step's packed stream. */
  starts: number[];
  total: number;
}

export class KVCache implements KVCacheLike {
  readonly k: Tensor[];
  readonly v: Tensor[];
  /** Valid positions per row. */
  readonly lengths: Int32Array;
  readonly batchSize: number;
  readonly maxLength: number;
  private step: Step | null = null;

  constructor(readonly opts: KVCacheOptions) {
    const { numLayers, batchSize, numKvHeads, headDim, maxLength } = opts;
    for (const [n, v] of Object.entries({ numLayers, batchSize, numKvHeads, headDim, maxLength })) {
      if (!Number.isInteger(v) || v < 1) throw new RangeError(`KVCache: ${n} must be a positive integer, got ${v}`);
    }
    const shape = [batchSize, numKvHeads, maxLength, headDim];
    this.k = Array.from({ length: numLayers }, () => keep(zeros(shape, opts.dtype ?? 'float32')));
    this.v = Array.from({ length: numLayers }, () => keep(zeros(shape, opts.dtype ?? 'float32')));
    this.lengths = new Int32Array(batchSize);
    this.batchSize = batchSize;
    this.maxLength = maxLength;
  }

  /** Valid positions of row b. */
  rowLength(b: number): number {
    return this.lengths[b]!;
  }

  /** Declares the next step: row b receives newLens[b] tokens. Returns their positions (packed). */
  begin(newLens: readonly number[]): Int32Array {
    if (newLens.length !== this.batchSize) throw new RangeError(`KVCache.begin: ${newLens.length} row lengths for a cache of ${this.batchSize} rows`);
    const starts: number[] = [];
    let total = 0;
    newLens.forEach((n, b) => {
      if (!Number.isInteger(n) || n < 0) throw new RangeError(`KVCache.begin: row ${b} length ${n} must be a non-negative integer`);
      if (this.lengths[b] + n > this.maxLength) {
        throw new RangeError(`KVCache: row ${b} would hold ${this.lengths[b] + n} positions, the cache has room for ${this.maxLength}`);
      }
      starts.push(total);
      total += n;
    });
    this.step = { newLens: [...newLens], starts, total };
    const positions = new Int32Array(total);
    newLens.forEach((n, b) => {
      for (let i = 0; i < n; i++) positions[starts[b] + i] = this.lengths[b] + i;
    });
    return positions;
  }

  /** Writes the step's k/v [T, Hkv, D] of `layer` into the rows' slots and attends q [T, Hq, D] → [T, Hq, D]. */
  attend(layer: number, q: Tensor, k: Tensor, v: Tensor): Tensor {
    const st = this.step;
    if (!st) throw new Error('KVCache.attend: call begin() before the forward step');
    if (q.shape[0] !== st.total || k.shape[0] !== st.total) {
      throw new RangeError(`KVCache.attend: the step declared ${st.total} tokens, got q [${q.shape}], k [${k.shape}]`);
    }
    const K = this.k[layer];
    const V = this.v[layer];
    st.newLens.forEach((n, b) => {
      if (n === 0) return;
      this.write(K, b, this.lengths[b], narrow(k, 0, st.starts[b], n));
      this.write(V, b, this.lengths[b], narrow(v, 0, st.starts[b], n));
    });
    const after = st.newLens.map((n, b) => this.lengths[b] + n);
    if (st.newLens.every((n) => n === 1)) return attentionDecode(q, K, V, after); // decode: one token per row
    const outs: Tensor[] = [];
    st.newLens.forEach((n, b) => {
      if (n === 0) return;
      const qb = unsqueeze(narrow(q, 0, st.starts[b], n), 0);                      // [1, n, Hq, D]
      const o = attentionDecode(qb, narrow(K, 0, b, 1), narrow(V, 0, b, 1), [after[b]]); // causal among the new
      outs.push(squeeze(o, 0));
    });
    return outs.length === 1 ? outs[0] : cat(outs, 0);
  }

  /** Closes the step: each row's length grows by its new tokens. */
  commit(): void {
    if (!this.step) throw new Error('KVCache.commit: no step in progress');
    this.step.newLens.forEach((n, b) => (this.lengths[b] += n));
    this.step = null;
  }

  /** Abandons a step (e.g. after an error) without advancing lengths. */
  abort(): void {
    this.step = null;
  }

  /** Empties one row (or all), e.g. to reuse a slot for a new sequence. */
  reset(row?: number): void {
    if (row === undefined) this.lengths.fill(0);
    else this.lengths[row] = 0;
  }

  dispose(): void {
    for (const t of [...this.k, ...this.v]) t.dispose();
  }

  /** cache[b, :, pos:pos+n, :] = src [n, Hkv, D]. */
  private write(cache: Tensor, b: number, pos: number, src: Tensor): void {
    const [, Hkv, Smax, D] = cache.shape;
    const n = src.shape[0];
    const slot = cache.viewAs([Hkv, n, D], [Smax * D, D, 1], cache.offset + b * Hkv * Smax * D + pos * D);
    const srcHeadsFirst = permute(src, [1, 0, 2]);
    copyInto(srcHeadsFirst, slot);
    slot.dispose();
    srcHeadsFirst.dispose();
  }
}
