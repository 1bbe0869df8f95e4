/**
 * The decoder-only language model (spec §2.5): token embeddings, pre-norm
 * decoder layers — RMSNorm, grouped-query causal self-attention with 1D RoPE,
 * RMSNorm, a SwiGLU feed-forward (dense) or an MoE of SwiGLU experts — a final
 * RMSNorm and a tied or untied output head.
 *
 * Tokens travel as one packed stream [T, d]; `cuSeqlens` keeps packed samples
 * from attending to each other, and positions restart per sample. Visual
 * tokens are ordinary positions (consecutive 1D positions, no M-RoPE).
 *
 * Weight names follow the Qwen/DeepSeek layout under `language.`:
 * embed_tokens, layers.{i}.{input_layernorm, self_attn.{q,k,v,o}_proj,
 * post_attention_layernorm, mlp.*}, norm, lm_head.
 */
import { Module, Embedding, RMSNorm, Linear } from '../../nn/index.ts';
import { SelfAttention, type AttentionContext } from '../../nn/attention.ts';
import { SwiGLU, MoE, type MoEOutput } from '../../nn/moe.ts';
import { Tensor, linear, tidy } from '../../tensor/index.ts';
import { add } from '../../tensor/ops/elementwise.ts';
import { rope1dTable, type RopeTable } from '../../tensor/ops/rope.ts';
import { type LanguageConfig, isMoELayer } from './config.ts';
import type { FloatDType } from './vision.ts';

export interface LayerOutput {
  hidden: Tensor;
  /** Routing of this layer's MoE (null for dense layers). */
  moe: MoEOutput | null;
}

export class DecoderLayer extends Module {
  readonly inputLayernorm: RMSNorm;
  readonly selfAttn: SelfAttention;
  readonly postAttentionLayernorm: RMSNorm;
  readonly mlp: SwiGLU | MoE;

  constructor(l: LanguageConfig, readonly index: number, dtype: FloatDType) {
    super();
    this.inputLayernorm = this.module('input_layernorm', new RMSNorm(l.hiddenSize, l.rmsNormEps, { dtype }));
    this.selfAttn = this.module('self_attn', new SelfAttention(index, {
      hidden: l.hiddenSize, numHeads: l.numHeads, numKvHeads: l.numKvHeads, headDim: l.headDim, qkvBias: l.attentionBias, dtype,
    }));
    this.postAttentionLayernorm = this.module('post_attention_layernorm', new RMSNorm(l.hiddenSize, l.rmsNormEps, { dtype }));
    const m = l.moe;
    this.mlp = this.module('mlp', isMoELayer(l, index) && m
      ? new MoE({
        hidden: l.hiddenSize, intermediate: m.intermediateSize, numExperts: m.numExperts, topK: m.numExpertsPerTok,
        scoring: m.scoringFunc, normTopkProb: m.normTopkProb, nGroup: m.nGroup, topkGroup: m.topkGroup,
        routedScalingFactor: m.routedScalingFactor, numShared: m.numSharedExperts, dtype,
      })
      : new SwiGLU(l.hiddenSize, l.intermediateSize, { dtype }));
  }

  forward(x: Tensor, ctx: AttentionContext): LayerOutput {
    const h = add(x, this.selfAttn.forward(this.inputLayernorm.forward(x), ctx));
    const y = this.postAttentionLayernorm.forward(h);
    if (this.mlp instanceof MoE) {
      const moe = this.mlp.forward(y);
      return { hidden: add(h, moe.out), moe };
    }
    return { hidden: add(h, this.mlp.forward(y)), moe: null };
  }
}

export interface LanguageOutput {
  /** Final-norm hidden states [T, d]. */
  hidden: Tensor;
  /** One entry per MoE layer, in layer order (for the auxiliary losses). */
  moe: MoEOutput[];
}

export class LanguageModel extends Module {
  readonly embedTokens: Embedding;
  readonly layers: DecoderLayer[];
  readonly norm: RMSNorm;
  readonly lmHead: Linear | null;

  constructor(readonly config: LanguageConfig, readonly dtype: FloatDType = 'float32') {
    super();
    const l = config;
    this.embedTokens = this.module('embed_tokens', new Embedding(l.vocabSize, l.hiddenSize, { dtype, std: l.initializerRange }));
    this.layers = this.modules('layers', Array.from({ length: l.numLayers }, (_, i) => new DecoderLayer(l, i, dtype)));
    this.norm = this.module('norm', new RMSNorm(l.hiddenSize, l.rmsNormEps, { dtype }));
    this.lmHead = l.tieWordEmbeddings ? null : this.module('lm_head', new Linear(l.hiddenSize, l.vocabSize, { bias: false, dtype }));
  }

  /** 1D RoPE tables [T, headDim/2] for the given positions. */
  ropeTable(positions: Int32Array): RopeTable {
    return rope1dTable(positions, { dim: this.config.headDim, theta: this.config.ropeTheta, dtype: this.dtype });
  }

  /** inputsEmbeds [T, d] → final hidden states; ctx carries RoPE tables, sample boundaries and the cache. */
  forward(inputsEmbeds: Tensor, ctx: AttentionContext): LanguageOutput {
    let h = inputsEmbeds;
    const moe: MoEOutput[] = [];
    for (const layer of this.layers) {
      // Each layer in its own scope: its temporaries go now (the autograd graph keeps what it saved).
      const out = tidy(() => layer.forward(h, ctx));
      if (h !== inputsEmbeds) h.dispose();
      h = out.hidden;
      if (out.moe) moe.push(out.moe);
    }
    return { hidden: this.norm.forward(h), moe };
  }

  /** hidden [T, d] → logits [T, V] (through the embedding matrix when tied). */
  logits(hidden: Tensor): Tensor {
    return this.lmHead ? this.lmHead.forward(hidden) : linear(hidden, this.embedTokens.weight);
  }
}
