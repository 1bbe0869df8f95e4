/**
 * Causal grouped-query self-attention with rotary positions, as in LLaMA/Qwen
 * decoders: q/k/v projections (optional bias), RoPE on q and k, attention, and
 * an output projection without bias.
 *
 * One definition serves training and inference. Without a cache, tokens are a
 * packed stream [T, d] whose `cuSeqlens` mark independent sequences (packed
 * samples never attend to each other). With a cache, the new keys/values are
 * appended to it and the queries attend to everything cached so far.
 */
import { Module } from './module.ts';
import { Linear } from './linear.ts';
import type { Tensor } from '../tensor/index.ts';
import { reshape } from '../tensor/ops/view.ts';
import { attention } from '../tensor/ops/attention.ts';
import { applyRope } from '../tensor/ops/rope.ts';

/** A per-layer key/value store (see models/seed_vl/kv_cache.ts). Inference only: no gradient. */
export interface KVCacheLike {
  /** Appends k/v [T, Hkv, D] of the current step to layer `layer` and attends q [T, Hq, D] over the cache. */
  attend(layer: number, q: Tensor, k: Tensor, v: Tensor): Tensor;
}

export interface AttentionContext {
  /** RoPE tables for the tokens' positions, [T, headDim/2] each. */
  cos: Tensor;
  sin: Tensor;
  /** Sequence boundaries in the packed stream [0, …, T] (no cache). */
  cuSeqlens: readonly number[];
  /** When given, attention runs against the cache (prefill / decode). */
  cache?: KVCacheLike;
}

export interface SelfAttentionOptions {
  hidden: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  /** Bias on q/k/v (Qwen2 style). */
  qkvBias?: boolean;
  dtype?: 'float32' | 'float64';
}

export class SelfAttention extends Module {
  readonly qProj: Linear;
  readonly kProj: Linear;
  readonly vProj: Linear;
  readonly oProj: Linear;
  readonly numHeads: number;
  readonly numKvHeads: number;
  readonly headDim: number;

  /** `layer` indexes this block's slot in a KV cache. */
  constructor(readonly layer: number, o: SelfAttentionOptions) {
    super();
    if (o.numHeads % o.numKvHeads !== 0) throw new RangeError(`SelfAttention: ${o.numHeads} query heads is not a multiple of ${o.numKvHeads} kv heads`);
    this.numHeads = o.numHeads;
    this.numKvHeads = o.numKvHeads;
    this.headDim = o.headDim;
    const bias = o.qkvBias ?? false;
    this.qProj = this.module('q_proj', new Linear(o.hidden, o.numHeads * o.headDim, { bias, dtype: o.dtype }));
    this.kProj = this.module('k_proj', new Linear(o.hidden, o.numKvHeads * o.headDim, { bias, dtype: o.dtype }));
    this.vProj = this.module('v_proj', new Linear(o.hidden, o.numKvHeads * o.headDim, { bias, dtype: o.dtype }));
    this.oProj = this.module('o_proj', new Linear(o.numHeads * o.headDim, o.hidden, { bias: false, dtype: o.dtype }));
  }

  /** x [T, d] → [T, d]. */
  forward(x: Tensor, ctx: AttentionContext): Tensor {
    const T = x.shape[0];
    const q = applyRope(reshape(this.qProj.forward(x), [T, this.numHeads, this.headDim]), ctx.cos, ctx.sin);
    const k = applyRope(reshape(this.kProj.forward(x), [T, this.numKvHeads, this.headDim]), ctx.cos, ctx.sin);
    const v = reshape(this.vProj.forward(x), [T, this.numKvHeads, this.headDim]);
    const o = ctx.cache
      ? ctx.cache.attend(this.layer, q, k, v)                               // [T, Hq, D] over cached + new keys
      : attention(q, k, v, { causal: true, cuSeqlens: ctx.cuSeqlens });    // causal within each sequence
    return this.oProj.forward(reshape(o, [T, this.numHeads * this.headDim]));
  }
}
