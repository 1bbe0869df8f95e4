/**
 * The Hub tensor list (names, shapes, roles) a config implies, in the
 * published layout of each family (sanitize.ts reads it back). Used to write
 * random-initialised checkpoints with real shapes (benchmarks, tests) that
 * transformers loads as well.
 */
import { type QwenVLConfig, isMoeLayer } from './config.ts';

export interface HubTensor {
  name: string;
  shape: number[];
  /** 'matrix': random; 'norm': ones; 'bias': zeros. */
  role: 'matrix' | 'norm' | 'bias';
}

export function hubTensors(c: QwenVLConfig): HubTensor[] {
  const out: HubTensor[] = [];
  const m = (name: string, ...shape: number[]) => out.push({ name, shape, role: 'matrix' });
  const n = (name: string, dim: number) => out.push({ name, shape: [dim], role: 'norm' });
  const b = (name: string, dim: number) => out.push({ name, shape: [dim], role: 'bias' });
  const qwen3 = c.family === 'qwen3_vl' || c.family === 'qwen3_vl_moe';
  const vp = qwen3 ? 'model.visual' : 'visual';
  const tp = qwen3 ? 'model.language_model' : 'model';
  const v = c.vision, t = c.text;
  const C = v.hiddenSize, I = v.intermediateSize, unit = v.mergeSize ** 2;
  m(`${vp}.patch_embed.proj.weight`, C, v.inChannels, v.temporalPatchSize, v.patchSize, v.patchSize);
  if (v.patchBias) b(`${vp}.patch_embed.proj.bias`, C);
  if (v.numPositionEmbeddings) m(`${vp}.pos_embed.weight`, v.numPositionEmbeddings, C);
  const norm = (name: string, dim: number) => {
    n(`${name}.weight`, dim);
    if (v.norm === 'layernorm') b(`${name}.bias`, dim);
  };
  const lin = (name: string, outF: number, inF: number, bias = true) => {
    m(`${name}.weight`, outF, inF);
    if (bias) b(`${name}.bias`, outF);
  };
  for (let i = 0; i < v.depth; i++) {
    const p = `${vp}.blocks.${i}`;
    norm(`${p}.norm1`, C);
    norm(`${p}.norm2`, C);
    lin(`${p}.attn.qkv`, 3 * C, C);
    lin(`${p}.attn.proj`, C, C);
    if (v.mlp === 'gated') {
      lin(`${p}.mlp.gate_proj`, I, C);
      lin(`${p}.mlp.up_proj`, I, C);
      lin(`${p}.mlp.down_proj`, C, I);
    } else {
      lin(`${p}.mlp.${qwen3 ? 'linear_fc1' : 'fc1'}`, I, C);
      lin(`${p}.mlp.${qwen3 ? 'linear_fc2' : 'fc2'}`, C, I);
    }
  }
  if (qwen3) {
    norm(`${vp}.merger.norm`, C);
    lin(`${vp}.merger.linear_fc1`, unit * C, unit * C);
    lin(`${vp}.merger.linear_fc2`, v.outHiddenSize, unit * C);
    v.deepstackVisualIndexes.forEach((_, k) => {
      norm(`${vp}.deepstack_merger_list.${k}.norm`, unit * C);
      lin(`${vp}.deepstack_merger_list.${k}.linear_fc1`, unit * C, unit * C);
      lin(`${vp}.deepstack_merger_list.${k}.linear_fc2`, v.outHiddenSize, unit * C);
    });
  } else {
    norm(`${vp}.merger.ln_q`, C);
    lin(`${vp}.merger.mlp.0`, unit * C, unit * C);
    lin(`${vp}.merger.mlp.2`, v.outHiddenSize, unit * C);
  }
  const d = t.hiddenSize, D = t.headDim;
  m(`${tp}.embed_tokens.weight`, t.vocabSize, d);
  for (let i = 0; i < t.numLayers; i++) {
    const p = `${tp}.layers.${i}`;
    n(`${p}.input_layernorm.weight`, d);
    n(`${p}.post_attention_layernorm.weight`, d);
    lin(`${p}.self_attn.q_proj`, t.numHeads * D, d, t.attentionBias);
    lin(`${p}.self_attn.k_proj`, t.numKvHeads * D, d, t.attentionBias);
    lin(`${p}.self_attn.v_proj`, t.numKvHeads * D, d, t.attentionBias);
    lin(`${p}.self_attn.o_proj`, d, t.numHeads * D, false);
    if (t.qkNorm) {
      n(`${p}.self_attn.q_norm.weight`, D);
      n(`${p}.self_attn.k_norm.weight`, D);
    }
    if (isMoeLayer(t, i)) {
      const e = t.moe!;
      m(`${p}.mlp.gate.weight`, e.numExperts, d);
      m(`${p}.mlp.experts.gate_up_proj`, e.numExperts, d, 2 * e.intermediateSize);
      m(`${p}.mlp.experts.down_proj`, e.numExperts, e.intermediateSize, d);
    } else {
      lin(`${p}.mlp.gate_proj`, t.intermediateSize, d, false);
      lin(`${p}.mlp.up_proj`, t.intermediateSize, d, false);
      lin(`${p}.mlp.down_proj`, d, t.intermediateSize, false);
    }
  }
  n(`${tp}.norm.weight`, d);
  if (!t.tieWordEmbeddings) m('lm_head.weight', t.vocabSize, d);
  return out;
}

/** Parameters the tensors hold. */
export const hubParamCount = (ts: readonly HubTensor[]): number => ts.reduce((a, t) => a + t.shape.reduce((x, y) => x * y, 1), 0);
