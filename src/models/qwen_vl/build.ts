/**
 * Assembles a QwenVLModel from a WeightStore (canonical names, sanitize.ts):
 * every module wraps the checkpoint's tensors directly (the nn classes'
 * fromTensors / fromLinears / fromModules factories), so building allocates
 * nothing but the f32 copies of norms and biases. Linear weights stored
 * quantised (a `seedvl quantize` directory) become quantised Linears around
 * the mapped packed tensors.
 */
import { Linear, LayerNorm, RMSNorm } from '../../nn/index.ts';
import { SwiGLU, Router, MoE } from '../../nn/moe.ts';
import { VisionAttention } from '../seed_vl/vision.ts';
import type { Tensor } from '../../tensor/index.ts';
import { type QwenVLConfig, type QwenVisionConfig, type QwenTextConfig, isMoeLayer, visionHeadDim, visionPatchDim } from './config.ts';
import { QwenVisionTower, QwenVisionBlock, VisionFcMLP, VisionGatedMLP, PatchMerger, type VisionNorm } from './vision.ts';
import { QwenTextModel, QwenDecoderLayer, QwenTextAttention } from './language.ts';
import { QwenVLModel } from './model.ts';
import type { WeightStore } from './weights.ts';

function lin(w: WeightStore, name: string, out: number, inF: number, bias: boolean | 'optional'): Linear {
  const q = w.quantizedMatrix(`${name}.weight`, [out, inF]);
  const weight = q ? null : w.matrix(`${name}.weight`, [out, inF]);
  const b = bias === 'optional' ? w.optionalVector(`${name}.bias`, out) : bias ? w.vector(`${name}.bias`, out) : null;
  return q ? Linear.fromQuantized(q, b) : Linear.fromTensors(weight!, b);
}

const rmsNormFrom = (weight: Tensor, eps: number): RMSNorm => RMSNorm.fromTensors(weight, eps);
const swigluFrom = (gate: Linear, up: Linear, down: Linear): SwiGLU => SwiGLU.fromLinears(gate, up, down);

function visionNorm(w: WeightStore, v: QwenVisionConfig, name: string, dim: number): VisionNorm {
  return v.norm === 'rmsnorm'
    ? rmsNormFrom(w.vector(`${name}.weight`, dim), v.normEps)
    : LayerNorm.fromTensors(w.vector(`${name}.weight`, dim), w.vector(`${name}.bias`, dim), v.normEps);
}

function buildVision(w: WeightStore, v: QwenVisionConfig): QwenVisionTower {
  const C = v.hiddenSize;
  const p = 'vision';
  const patchEmbed = lin(w, `${p}.patch_embed`, C, visionPatchDim(v), v.patchBias);
  const posEmbed: Tensor | null = v.numPositionEmbeddings > 0 ? w.matrix(`${p}.pos_embed.weight`, [v.numPositionEmbeddings, C]) : null;
  const blocks: QwenVisionBlock[] = [];
  for (let i = 0; i < v.depth; i++) {
    const b = `${p}.blocks.${i}`;
    const attn = VisionAttention.fromLinears(lin(w, `${b}.attn.qkv`, 3 * C, C, true), lin(w, `${b}.attn.proj`, C, C, true), v.numHeads, visionHeadDim(v));
    const I = v.intermediateSize;
    const mlp = v.mlp === 'gated'
      ? new VisionGatedMLP(lin(w, `${b}.mlp.gate_proj`, I, C, true), lin(w, `${b}.mlp.up_proj`, I, C, true), lin(w, `${b}.mlp.down_proj`, C, I, true), v.hiddenAct)
      : new VisionFcMLP(lin(w, `${b}.mlp.fc1`, I, C, true), lin(w, `${b}.mlp.fc2`, C, I, true), v.hiddenAct);
    blocks.push(new QwenVisionBlock(visionNorm(w, v, `${b}.norm1`, C), attn, visionNorm(w, v, `${b}.norm2`, C), mlp));
  }
  const unit = v.mergeSize * v.mergeSize;
  const merger = (name: string, after: boolean): PatchMerger => new PatchMerger(
    visionNorm(w, v, `${name}.norm`, after ? unit * C : C),
    lin(w, `${name}.fc1`, unit * C, unit * C, true),
    lin(w, `${name}.fc2`, v.outHiddenSize, unit * C, true),
    after, v.mergeSize,
  );
  const deep = v.deepstackVisualIndexes.map((_, k) => merger(`${p}.deepstack_mergers.${k}`, true));
  return new QwenVisionTower(v, patchEmbed, posEmbed, blocks, merger(`${p}.merger`, false), deep);
}

function buildText(w: WeightStore, t: QwenTextConfig): QwenTextModel {
  const d = t.hiddenSize, D = t.headDim;
  const p = 'language';
  const embed = w.matrix(`${p}.embed_tokens.weight`, [t.vocabSize, d]);
  const layers: QwenDecoderLayer[] = [];
  for (let i = 0; i < t.numLayers; i++) {
    const l = `${p}.layers.${i}`;
    const a = `${l}.self_attn`;
    const attn = new QwenTextAttention(
      i, t.numHeads, t.numKvHeads, D,
      lin(w, `${a}.q_proj`, t.numHeads * D, d, t.attentionBias),
      lin(w, `${a}.k_proj`, t.numKvHeads * D, d, t.attentionBias),
      lin(w, `${a}.v_proj`, t.numKvHeads * D, d, t.attentionBias),
      lin(w, `${a}.o_proj`, d, t.numHeads * D, false),
      t.qkNorm ? rmsNormFrom(w.vector(`${a}.q_norm.weight`, D), t.rmsNormEps) : null,
      t.qkNorm ? rmsNormFrom(w.vector(`${a}.k_norm.weight`, D), t.rmsNormEps) : null,
    );
    let mlp;
    if (isMoeLayer(t, i)) {
      const m = t.moe!;
      const router = Router.fromTensors(w.matrix(`${l}.mlp.gate.weight`, [m.numExperts, d]), { topK: m.topK, scoring: 'softmax', normTopkProb: m.normTopkProb });
      const experts = Array.from({ length: m.numExperts }, (_, e) => {
        const x = `${l}.mlp.experts.${e}`;
        return swigluFrom(lin(w, `${x}.gate_proj`, m.intermediateSize, d, false), lin(w, `${x}.up_proj`, m.intermediateSize, d, false), lin(w, `${x}.down_proj`, d, m.intermediateSize, false));
      });
      mlp = MoE.fromModules(router, experts);
    } else {
      mlp = swigluFrom(lin(w, `${l}.mlp.gate_proj`, t.intermediateSize, d, false), lin(w, `${l}.mlp.up_proj`, t.intermediateSize, d, false), lin(w, `${l}.mlp.down_proj`, d, t.intermediateSize, false));
    }
    layers.push(new QwenDecoderLayer(
      rmsNormFrom(w.vector(`${l}.input_layernorm.weight`, d), t.rmsNormEps), attn,
      rmsNormFrom(w.vector(`${l}.post_attention_layernorm.weight`, d), t.rmsNormEps), mlp,
    ));
  }
  const norm = rmsNormFrom(w.vector(`${p}.norm.weight`, d), t.rmsNormEps);
  // A tied checkpoint may still carry lm_head.weight (some exporters write it): use it only when untied.
  const head = t.tieWordEmbeddings ? null : lin(w, `${p}.lm_head`, t.vocabSize, d, false);
  if (t.tieWordEmbeddings && w.has(`${p}.lm_head.weight`)) w.matrix(`${p}.lm_head.weight`, [t.vocabSize, d]).dispose();
  return new QwenTextModel(t, embed, layers, norm, head);
}

/** Builds the model; on failure every tensor taken so far is released. */
export function buildQwenModel(config: QwenVLConfig, w: WeightStore): QwenVLModel {
  try {
    const vision = buildVision(w, config.vision);
    const language = buildText(w, config.text);
    w.finish();
    return new QwenVLModel(config, vision, language);
  } catch (e) {
    w.abort();
    throw e;
  }
}
