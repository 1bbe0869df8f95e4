/**
 * Seed1.5-VL configuration: typed, validated at load, serialisable as
 * `config.json`. In TypeScript the keys are camelCase; in JSON they are
 * snake_case in Hugging Face style (`vision_config`, `text_config`, …).
 * `parseConfig` is the single validator: presets and hand-built configs go
 * through it too (`makeConfig`), so every config in the program has passed the
 * same checks. Errors name the JSON key path and the bad value.
 *
 * Values the report leaves open are project defaults (spec §2, §14) and stay
 * configuration values here, never constants in model code.
 */
import { ConfigError, Section } from './config_reader.ts';

export { ConfigError };

export type RouterScoring = 'softmax' | 'sigmoid';
export type VisionActivation = 'gelu' | 'gelu_tanh' | 'gelu_pytorch_tanh' | 'quick_gelu';
const VISION_ACTS: readonly VisionActivation[] = ['gelu', 'gelu_tanh', 'gelu_pytorch_tanh', 'quick_gelu'];
const ADAPTER_ACTS = ['gelu', 'gelu_tanh', 'gelu_pytorch_tanh', 'quick_gelu', 'silu', 'relu'] as const;
export type AdapterActivation = (typeof ADAPTER_ACTS)[number];

/** Seed-ViT (spec §2.2–2.3). */
export interface VisionConfig {
  /** Patch side in pixels (14). */
  patchSize: number;
  inChannels: number;
  hiddenSize: number;
  numLayers: number;
  numHeads: number;
  /** MLP width = hiddenSize · mlpRatio (must come out an integer). */
  mlpRatio: number;
  hiddenAct: VisionActivation;
  layerNormEps: number;
  /** 2D RoPE base θ (project default 10000). */
  ropeTheta: number;
  /** Side of the pooling window: 2 → one LLM token per 2×2 patches (28×28 px). */
  mergeSize: number;
}

/** Pool → Linear(vision → hiddenSize) → act → Linear(hiddenSize → LLM width) (spec §2.4). */
export interface AdapterConfig {
  hiddenSize: number;
  hiddenAct: AdapterActivation;
}

/** Mixture-of-experts feed-forward (open-models §7–8). */
export interface MoEConfig {
  /** Routed experts per MoE layer. */
  numExperts: number;
  /** Experts chosen per token (top-k). */
  numExpertsPerTok: number;
  /** SwiGLU width of one expert. */
  intermediateSize: number;
  /** 'softmax': softmax → top-k (Qwen3-MoE). 'sigmoid': sigmoid + learned bias, group-limited (DeepSeek-V3). */
  scoringFunc: RouterScoring;
  /** Renormalise the selected weights to sum to one. */
  normTopkProb: boolean;
  /** Expert groups for group-limited routing (sigmoid family; 1 = no grouping). */
  nGroup: number;
  /** Groups kept per token. */
  topkGroup: number;
  /** Multiplies the routed weights (DeepSeek `routed_scaling_factor`). */
  routedScalingFactor: number;
  /** Always-on shared experts, fused into one SwiGLU of width numSharedExperts·intermediateSize. */
  numSharedExperts: number;
  /** The first k layers use a dense SwiGLU (of the language `intermediateSize`) instead of MoE. */
  firstKDenseReplace: number;
  /** Layer i ≥ firstKDenseReplace is MoE when i % layerFreq === 0. */
  layerFreq: number;
  /** Weight of the load-balancing loss E·Σ f_e·P_e (mean over MoE layers). */
  auxLossCoef: number;
  /** Weight of the router z-loss mean(logsumexp(logits)²). */
  zLossCoef: number;
}

/** Decoder-only language model (spec §2.5). */
export interface LanguageConfig {
  vocabSize: number;
  hiddenSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  /** SwiGLU width of dense layers. */
  intermediateSize: number;
  rmsNormEps: number;
  ropeTheta: number;
  maxPositionEmbeddings: number;
  tieWordEmbeddings: boolean;
  /** Bias on q/k/v projections (Qwen2 style); o_proj never has one. */
  attentionBias: boolean;
  /** Std of the normal initialisation of weight matrices and embeddings. */
  initializerRange: number;
  /** null: every layer is dense. */
  moe: MoEConfig | null;
}

export interface SeedVLConfig {
  modelType: 'seed_vl';
  vision: VisionConfig;
  adapter: AdapterConfig;
  language: LanguageConfig;
  /** `[SOI]`: opens an image. */
  soiTokenId: number;
  /** `[EOI]`: closes an image. */
  eoiTokenId: number;
  /** Placeholder token; one per LLM image token, replaced by adapter outputs. */
  imageTokenId: number;
  eosTokenId: number;
  padTokenId: number;
}

// ---------------------------------------------------------------- derived sizes

export const visionHeadDim = (v: VisionConfig): number => v.hiddenSize / v.numHeads;
export const visionMlpSize = (v: VisionConfig): number => v.hiddenSize * v.mlpRatio;
/** Values in one flattened patch row: C·P·P (588 for RGB 14×14). */
export const patchDim = (v: VisionConfig): number => v.inChannels * v.patchSize * v.patchSize;
/** Pixels per side of one LLM token (28). */
export const tokenPixels = (v: VisionConfig): number => v.patchSize * v.mergeSize;

/** True when decoder layer `i` uses the MoE feed-forward. */
export function isMoELayer(l: LanguageConfig, i: number): boolean {
  const m = l.moe;
  return m !== null && i >= m.firstKDenseReplace && i % m.layerFreq === 0;
}

// ---------------------------------------------------------------- JSON → typed

function readVision(s: Section): VisionConfig {
  const v: VisionConfig = {
    patchSize: s.int('patch_size', { min: 1, default: 14 }),
    inChannels: s.int('in_channels', { min: 1, default: 3 }),
    hiddenSize: s.int('hidden_size', { min: 1 }),
    numLayers: s.int('num_hidden_layers', { min: 1 }),
    numHeads: s.int('num_attention_heads', { min: 1 }),
    mlpRatio: s.num('mlp_ratio', { min: 0, exclusiveMin: true, default: 4 }),
    hiddenAct: s.oneOf('hidden_act', VISION_ACTS, 'gelu'),
    layerNormEps: s.num('layer_norm_eps', { min: 0, exclusiveMin: true, default: 1e-6 }),
    ropeTheta: s.num('rope_theta', { min: 0, exclusiveMin: true, default: 10000 }),
    mergeSize: s.int('spatial_merge_size', { min: 1, default: 2 }),
  };
  s.finish();
  if (v.hiddenSize % v.numHeads !== 0) {
    s.fail('num_attention_heads', `must divide vision_config.hidden_size (${v.hiddenSize})`, v.numHeads);
  }
  // 2D RoPE: half the rotary pairs follow the row, half the column → head_dim/4 frequencies each.
  if (visionHeadDim(v) % 4 !== 0) {
    s.fail('num_attention_heads', `must give a head dim (hidden_size / heads = ${visionHeadDim(v)}) divisible by 4 for 2D RoPE`, v.numHeads);
  }
  if (!Number.isInteger(visionMlpSize(v))) {
    s.fail('mlp_ratio', `must make hidden_size·mlp_ratio an integer (hidden_size ${v.hiddenSize})`, v.mlpRatio);
  }
  if (v.mergeSize !== 2) s.fail('spatial_merge_size', 'must be 2 (the 2×2 average pool of spec §2.4)', v.mergeSize);
  return v;
}

function readMoE(s: Section, numLayers: number): MoEConfig {
  const m: MoEConfig = {
    numExperts: s.int('num_experts', { min: 1 }),
    numExpertsPerTok: s.int('num_experts_per_tok', { min: 1 }),
    intermediateSize: s.int('moe_intermediate_size', { min: 1 }),
    scoringFunc: s.oneOf('scoring_func', ['softmax', 'sigmoid'] as const, 'softmax'),
    normTopkProb: s.bool('norm_topk_prob', true),
    nGroup: s.int('n_group', { min: 1, default: 1 }),
    topkGroup: s.int('topk_group', { min: 1, default: 1 }),
    routedScalingFactor: s.num('routed_scaling_factor', { min: 0, exclusiveMin: true, default: 1 }),
    numSharedExperts: s.int('n_shared_experts', { min: 0, default: 0 }),
    firstKDenseReplace: s.int('first_k_dense_replace', { min: 0, default: 0 }),
    layerFreq: s.int('moe_layer_freq', { min: 1, default: 1 }),
    auxLossCoef: s.num('router_aux_loss_coef', { min: 0, default: 0.001 }),
    zLossCoef: s.num('router_z_loss_coef', { min: 0, default: 0 }),
  };
  s.finish();
  if (m.numExpertsPerTok > m.numExperts) s.fail('num_experts_per_tok', `must be <= num_experts (${m.numExperts})`, m.numExpertsPerTok);
  if (m.numExperts % m.nGroup !== 0) s.fail('n_group', `must divide num_experts (${m.numExperts})`, m.nGroup);
  if (m.topkGroup > m.nGroup) s.fail('topk_group', `must be <= n_group (${m.nGroup})`, m.topkGroup);
  if (m.nGroup > 1) {
    const perGroup = m.numExperts / m.nGroup;
    if (m.scoringFunc !== 'sigmoid') s.fail('n_group', 'must be 1 unless scoring_func is "sigmoid" (group-limited routing is the DeepSeek-V3 rule)', m.nGroup);
    if (perGroup < 2) s.fail('n_group', `must leave at least 2 experts per group (group score = sum of the top 2); num_experts ${m.numExperts}`, m.nGroup);
    if (m.numExpertsPerTok > m.topkGroup * perGroup) {
      s.fail('num_experts_per_tok', `must be <= topk_group · experts per group (${m.topkGroup * perGroup})`, m.numExpertsPerTok);
    }
  }
  if (m.firstKDenseReplace >= numLayers) {
    s.fail('first_k_dense_replace', `must be < text_config.num_hidden_layers (${numLayers}) or the model has no MoE layer`, m.firstKDenseReplace);
  }
  return m;
}

function readLanguage(s: Section): LanguageConfig {
  const hiddenSize = s.int('hidden_size', { min: 1 });
  const numLayers = s.int('num_hidden_layers', { min: 1 });
  const numHeads = s.int('num_attention_heads', { min: 1 });
  const numKvHeads = s.int('num_key_value_heads', { min: 1, default: numHeads });
  let headDim = s.optionalInt('head_dim', { min: 2 });
  if (headDim === null) {
    if (hiddenSize % numHeads !== 0) s.fail('num_attention_heads', `must divide text_config.hidden_size (${hiddenSize}) when head_dim is not given`, numHeads);
    headDim = hiddenSize / numHeads;
  }
  if (headDim % 2 !== 0) s.fail('head_dim', 'must be even (RoPE rotates channel pairs)', headDim);
  if (numHeads % numKvHeads !== 0) s.fail('num_key_value_heads', `must divide num_attention_heads (${numHeads})`, numKvHeads);
  const l: LanguageConfig = {
    vocabSize: s.int('vocab_size', { min: 1 }),
    hiddenSize,
    numLayers,
    numHeads,
    numKvHeads,
    headDim,
    intermediateSize: s.int('intermediate_size', { min: 1 }),
    rmsNormEps: s.num('rms_norm_eps', { min: 0, exclusiveMin: true, default: 1e-6 }),
    ropeTheta: s.num('rope_theta', { min: 0, exclusiveMin: true, default: 1e6 }),
    maxPositionEmbeddings: s.int('max_position_embeddings', { min: 1, default: 131072 }),
    tieWordEmbeddings: s.bool('tie_word_embeddings', false),
    attentionBias: s.bool('attention_bias', false),
    initializerRange: s.num('initializer_range', { min: 0, exclusiveMin: true, default: 0.02 }),
    moe: null,
  };
  const moe = s.section('moe', true);
  if (moe) l.moe = readMoE(moe, numLayers);
  s.finish();
  return l;
}

/** Validates a parsed `config.json` object and returns the typed config. Throws ConfigError naming the bad key. */
export function parseConfig(json: unknown): SeedVLConfig {
  const s = Section.root(json);
  const modelType = s.oneOf('model_type', ['seed_vl'] as const, 'seed_vl');
  const vision = readVision(s.section('vision_config')!);
  const language = readLanguage(s.section('text_config')!);
  const a = s.section('adapter_config', true);
  const adapter: AdapterConfig = {
    hiddenSize: a?.optionalInt('hidden_size', { min: 1 }) ?? language.hiddenSize,
    hiddenAct: a ? a.oneOf('hidden_act', ADAPTER_ACTS, 'gelu') : 'gelu',
  };
  a?.finish();
  const tok = (key: string): number => s.int(key, { min: 0, max: language.vocabSize - 1 });
  const cfg: SeedVLConfig = {
    modelType,
    vision,
    adapter,
    language,
    soiTokenId: tok('soi_token_id'),
    eoiTokenId: tok('eoi_token_id'),
    imageTokenId: tok('image_token_id'),
    eosTokenId: tok('eos_token_id'),
    padTokenId: tok('pad_token_id'),
  };
  s.finish();
  const specials: [string, number][] = [['soi_token_id', cfg.soiTokenId], ['eoi_token_id', cfg.eoiTokenId], ['image_token_id', cfg.imageTokenId]];
  for (let i = 0; i < specials.length; i++) {
    for (let j = 0; j < i; j++) {
      if (specials[i][1] === specials[j][1]) s.fail(specials[i][0], `must differ from ${specials[j][0]}`, specials[i][1]);
    }
  }
  return cfg;
}

// ---------------------------------------------------------------- typed → JSON

function moeToJSON(m: MoEConfig): Record<string, unknown> {
  return {
    num_experts: m.numExperts,
    num_experts_per_tok: m.numExpertsPerTok,
    moe_intermediate_size: m.intermediateSize,
    scoring_func: m.scoringFunc,
    norm_topk_prob: m.normTopkProb,
    n_group: m.nGroup,
    topk_group: m.topkGroup,
    routed_scaling_factor: m.routedScalingFactor,
    n_shared_experts: m.numSharedExperts,
    first_k_dense_replace: m.firstKDenseReplace,
    moe_layer_freq: m.layerFreq,
    router_aux_loss_coef: m.auxLossCoef,
    router_z_loss_coef: m.zLossCoef,
  };
}

/** The `config.json` object (snake_case keys); `parseConfig(configToJSON(c))` deep-equals `c`. */
export function configToJSON(c: SeedVLConfig): Record<string, unknown> {
  const v = c.vision;
  const l = c.language;
  return {
    model_type: c.modelType,
    vision_config: {
      patch_size: v.patchSize,
      in_channels: v.inChannels,
      hidden_size: v.hiddenSize,
      num_hidden_layers: v.numLayers,
      num_attention_heads: v.numHeads,
      mlp_ratio: v.mlpRatio,
      hidden_act: v.hiddenAct,
      layer_norm_eps: v.layerNormEps,
      rope_theta: v.ropeTheta,
      spatial_merge_size: v.mergeSize,
    },
    adapter_config: { hidden_size: c.adapter.hiddenSize, hidden_act: c.adapter.hiddenAct },
    text_config: {
      vocab_size: l.vocabSize,
      hidden_size: l.hiddenSize,
      num_hidden_layers: l.numLayers,
      num_attention_heads: l.numHeads,
      num_key_value_heads: l.numKvHeads,
      head_dim: l.headDim,
      intermediate_size: l.intermediateSize,
      rms_norm_eps: l.rmsNormEps,
      rope_theta: l.ropeTheta,
      max_position_embeddings: l.maxPositionEmbeddings,
      tie_word_embeddings: l.tieWordEmbeddings,
      attention_bias: l.attentionBias,
      initializer_range: l.initializerRange,
      moe: l.moe ? moeToJSON(l.moe) : null,
    },
    soi_token_id: c.soiTokenId,
    eoi_token_id: c.eoiTokenId,
    image_token_id: c.imageTokenId,
    eos_token_id: c.eosTokenId,
    pad_token_id: c.padTokenId,
  };
}

/** Validates a typed config (e.g. one built in code) by a round trip through the JSON validator. */
export function makeConfig(c: SeedVLConfig): SeedVLConfig {
  return parseConfig(configToJSON(c));
}

/** `config.json` text. */
export function configToString(c: SeedVLConfig): string {
  return JSON.stringify(configToJSON(c), null, 2) + '\n';
}

/** Parses `config.json` text (JSON syntax errors are reported as ConfigError too). */
export function configFromString(text: string): SeedVLConfig {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new ConfigError(`config: not valid JSON (${(e as Error).message})`);
  }
  return parseConfig(json);
}
