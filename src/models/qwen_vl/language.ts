/**
 * The Qwen2 / Qwen2.5 / Qwen3 / Qwen3-MoE decoders (open-models.md §4.5, §6.3, §7):
 * pre-norm RMSNorm layers with grouped-query causal attention under M-RoPE —
 * q/k/v biases (Qwen2/2.5) or per-head q/k RMSNorm before RoPE (Qwen3) — and a
 * SwiGLU MLP or a softmax top-k MoE (nn/moe.ts, experts computed sparsely).
 * Qwen3-VL adds deepstack: after layer k, the k-th deepstack vision features
 * are added to the hidden states at the visual token positions.
 *
 * Tokens travel packed [T, d] with `cuSeqlens` (no cache) or through a KV cache
 * (`ctx.cache`, prefill/decode), as in nn/attention.ts.
 */
import { Module, Linear, RMSNorm } from '../../nn/index.ts';
import type { AttentionContext } from '../../nn/attention.ts';
import { SwiGLU, MoE } from '../../nn/moe.ts';
import { Tensor, tidy, linear, embedding, indexAdd } from '../../tensor/index.ts';
import { reshape } from '../../tensor/ops/view.ts';
import { add } from '../../tensor/ops/elementwise.ts';
import { attention } from '../../tensor/ops/attention.ts';
import { applyRope } from '../../tensor/ops/rope.ts';
import type { QwenTextConfig } from './config.ts';
import type { Trace } from './vision.ts';

export class QwenTextAttention extends Module {
  constructor(
    readonly layer: number,
    readonly numHeads: number,
    readonly numKvHeads: number,
    readonly headDim: number,
    readonly qProj: Linear,
    readonly kProj: Linear,
    readonly vProj: Linear,
    readonly oProj: Linear,
    readonly qNorm: RMSNorm | null,
    readonly kNorm: RMSNorm | null,
  ) {
    super();
    this.module('q_proj', qProj);
    this.module('k_proj', kProj);
    this.module('v_proj', vProj);
    this.module('o_proj', oProj);
    if (qNorm) this.module('q_norm', qNorm);
    if (kNorm) this.module('k_norm', kNorm);
  }

  /** x [T, d] → [T, d]. */
  forward(x: Tensor, ctx: AttentionContext): Tensor {
    const T = x.shape[0];
    let q = reshape(this.qProj.forward(x), [T, this.numHeads, this.headDim]);
    let k = reshape(this.kProj.forward(x), [T, this.numKvHeads, this.headDim]);
    if (this.qNorm) q = this.qNorm.forward(q);                            // per head, over headDim
    if (this.kNorm) k = this.kNorm.forward(k);
    q = applyRope(q, ctx.cos, ctx.sin);
    k = applyRope(k, ctx.cos, ctx.sin);
    const v = reshape(this.vProj.forward(x), [T, this.numKvHeads, this.headDim]);
    const o = ctx.cache
      ? ctx.cache.attend(this.layer, q, k, v)
      : attention(q, k, v, { causal: true, cuSeqlens: ctx.cuSeqlens });
    return this.oProj.forward(reshape(o, [T, this.numHeads * this.headDim]));
  }
}

export class QwenDecoderLayer extends Module {
  constructor(readonly inputLayernorm: RMSNorm, readonly selfAttn: QwenTextAttention, readonly postAttentionLayernorm: RMSNorm, readonly mlp: SwiGLU | MoE) {
    super();
    this.module('input_layernorm', inputLayernorm);
    this.module('self_attn', selfAttn);
    this.module('post_attention_layernorm', postAttentionLayernorm);
    this.module('mlp', mlp);
  }

  /** Returns the new hidden states and, for MoE layers, the router logits [T, E]. */
  forward(x: Tensor, ctx: AttentionContext): { hidden: Tensor; routerLogits: Tensor | null } {
    const h = add(x, this.selfAttn.forward(this.inputLayernorm.forward(x), ctx));
    const y = this.postAttentionLayernorm.forward(h);
    if (this.mlp instanceof MoE) {
      const m = this.mlp.forward(y);
      return { hidden: add(h, m.out), routerLogits: m.routing.logits };
    }
    return { hidden: add(h, this.mlp.forward(y)), routerLogits: null };
  }
}

/**
 * Deepstack features to add after the first layers: for each source (images,
 * videos), rows `rows` of the token stream get `features[k]` after layer k.
 */
export type Deepstack = { rows: Int32Array; features: Tensor[] }[];

export class QwenTextModel extends Module {
  constructor(
    readonly config: QwenTextConfig,
    readonly embedTokens: Tensor,
    readonly layers: QwenDecoderLayer[],
    readonly norm: RMSNorm,
    readonly lmHead: Linear | null,
  ) {
    super();
    this.param('embed_tokens.weight', embedTokens, false);
    this.modules('layers', layers);
    this.module('norm', norm);
    if (lmHead) this.module('lm_head', lmHead);
  }

  /** Token embeddings [T, d] (f32, whatever the table's dtype). */
  embed(ids: Int32Array): Tensor {
    return embedding(this.embedTokens, ids);
  }

  /** inputsEmbeds [T, d] → final-norm hidden states [T, d]. `trace` gets every layer's output (before deepstack). */
  forward(inputsEmbeds: Tensor, ctx: AttentionContext, deepstack?: Deepstack, trace?: Trace): Tensor {
    let h = inputsEmbeds;
    this.layers.forEach((layer, i) => {
      // Each layer in its own scope: its temporaries go now.
      const next = tidy(() => {
        const out = layer.forward(h, ctx);
        trace?.(`layers.${i}.out`, out.hidden);
        if (out.routerLogits) trace?.(`layers.${i}.router_logits`, out.routerLogits);
        let hidden = out.hidden;
        for (const src of deepstack ?? []) {
          if (i < src.features.length && src.rows.length) hidden = indexAdd(hidden, 0, src.rows, src.features[i]);
        }
        return hidden;
      });
      if (h !== inputsEmbeds) h.dispose();
      h = next;
    });
    const out = this.norm.forward(h);
    if (h !== inputsEmbeds) h.dispose();
    return out;
  }

  /** hidden [T, d] → logits [T, V] (through the embedding table when tied). */
  logits(hidden: Tensor): Tensor {
    return this.lmHead ? this.lmHead.forward(hidden) : linear(hidden, this.embedTokens);
  }
}
