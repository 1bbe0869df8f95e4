/**
 * Qwen2-VL / Qwen2.5-VL / Qwen3-VL / Qwen3-VL-MoE configuration, read from a
 * Hugging Face `config.json` (open-models.md §2.3).
 *
 * The Hub files come in several spellings, all accepted:
 * - text fields at the top level (original Qwen2/2.5-VL files) or under
 *   `text_config` (Qwen3, and files re-saved by transformers ≥ 4.5x); a key in
 *   `text_config` wins over the top level, except `tie_word_embeddings`, which
 *   belongs to the top-level model;
 * - RoPE as `rope_scaling: {type: "mrope", mrope_section}`, `rope_scaling:
 *   {rope_type: "default", mrope_section, mrope_interleaved}` or transformers 5's
 *   `rope_parameters: {rope_theta, mrope_section, …}`, with `rope_theta` at the
 *   top of the text config or inside `rope_parameters`;
 * - experts as `num_experts` or `num_local_experts`.
 * Hugging Face configs carry many keys we do not need, so unknown keys are
 * ignored (unlike our own config.json); every key we read is validated and an
 * error names the file and the key.
 */
import { ConfigError, Section } from '../seed_vl/config_reader.ts';

export { ConfigError };

export type QwenFamily = 'qwen2_vl' | 'qwen2_5_vl' | 'qwen3_vl' | 'qwen3_vl_moe';

export const QWEN_FAMILIES: readonly QwenFamily[] = ['qwen2_vl', 'qwen2_5_vl', 'qwen3_vl', 'qwen3_vl_moe'];

/** Hub `architectures` entries of each family. */
export const QWEN_ARCHITECTURES: Record<QwenFamily, string> = {
  qwen2_vl: 'Qwen2VLForConditionalGeneration',
  qwen2_5_vl: 'Qwen2_5_VLForConditionalGeneration',
  qwen3_vl: 'Qwen3VLForConditionalGeneration',
  qwen3_vl_moe: 'Qwen3VLMoeForConditionalGeneration',
};

export interface QwenVisionConfig {
  depth: number;
  /** ViT width C. */
  hiddenSize: number;
  numHeads: number;
  /** MLP width (Qwen2-VL: embed_dim · mlp_ratio). */
  intermediateSize: number;
  hiddenAct: string;
  patchSize: number;
  temporalPatchSize: number;
  mergeSize: number;
  inChannels: number;
  /** Merger output = LLM width. */
  outHiddenSize: number;
  /** Qwen2.5-VL uses RMSNorm (weight only); the others LayerNorm with bias. */
  norm: 'layernorm' | 'rmsnorm';
  /** 'fc': fc1 → act → fc2 (Qwen2-VL, Qwen3-VL); 'gated': down(act(gate)·up), all with bias (Qwen2.5-VL). */
  mlp: 'fc' | 'gated';
  /** Conv3d patch embedding with bias (Qwen3-VL). */
  patchBias: boolean;
  /** Window attention (Qwen2.5-VL): window side in pixels, 0 = none. */
  windowSize: number;
  /** Blocks with full attention when windows are used. */
  fullattBlockIndexes: number[];
  /** Qwen2.5-VL video: temporal M-RoPE ids per second. */
  tokensPerSecond: number;
  /** Learned position table entries (Qwen3-VL: 2304 = 48²), 0 = none. */
  numPositionEmbeddings: number;
  /** Blocks whose output feeds a deepstack merger (Qwen3-VL). */
  deepstackVisualIndexes: number[];
  ropeTheta: number;
  normEps: number;
}

export interface QwenMoEConfig {
  numExperts: number;
  topK: number;
  intermediateSize: number;
  normTopkProb: boolean;
  decoderSparseStep: number;
  mlpOnlyLayers: number[];
}

export interface QwenTextConfig {
  vocabSize: number;
  hiddenSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  intermediateSize: number;
  hiddenAct: string;
  rmsNormEps: number;
  ropeTheta: number;
  /** Frequencies per (t, h, w) stream; sums to headDim/2. */
  mropeSection: [number, number, number];
  mropeInterleaved: boolean;
  /** Bias on q/k/v (Qwen2/2.5). */
  attentionBias: boolean;
  /** Per-head RMSNorm of q and k before RoPE (Qwen3). */
  qkNorm: boolean;
  tieWordEmbeddings: boolean;
  maxPositionEmbeddings: number;
  moe: QwenMoEConfig | null;
}

export interface QwenVLConfig {
  family: QwenFamily;
  modelType: string;
  architectures: string[];
  text: QwenTextConfig;
  vision: QwenVisionConfig;
  imageTokenId: number;
  videoTokenId: number;
  visionStartTokenId: number;
  visionEndTokenId: number;
  bosTokenId: number | null;
}

/** A config error that names the file it came from. */
function inFile<T>(file: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof ConfigError) throw new ConfigError(`${file}: ${e.message}`);
    throw e;
  }
}

/** Which family a config.json describes, from model_type (then architectures); null if none. */
export function detectFamily(json: Record<string, unknown>): QwenFamily | null {
  const mt = json['model_type'];
  if (typeof mt === 'string' && (QWEN_FAMILIES as readonly string[]).includes(mt)) return mt as QwenFamily;
  const arch = Array.isArray(json['architectures']) ? (json['architectures'] as unknown[]) : [];
  for (const f of QWEN_FAMILIES) if (arch.includes(QWEN_ARCHITECTURES[f])) return f;
  return null;
}

/** Reads a key from text_config first, then the top level. */
class TextReader {
  constructor(private readonly top: Section, private readonly text: Section | null) {}
  private pick(key: string): Section {
    return this.text?.has(key) ? this.text : this.top;
  }
  has(key: string): boolean {
    return !!this.text?.has(key) || this.top.has(key);
  }
  int(key: string, rule: Parameters<Section['int']>[1] = {}): number {
    return this.pick(key).int(key, rule);
  }
  num(key: string, rule: Parameters<Section['num']>[1] = {}): number {
    return this.pick(key).num(key, rule);
  }
  bool(key: string, fallback?: boolean): boolean {
    return this.pick(key).bool(key, fallback);
  }
  str(key: string, fallback: string): string {
    const s = this.pick(key);
    if (!s.has(key)) return fallback;
    return s.oneOf(key, ['silu', 'swish', 'gelu', 'gelu_pytorch_tanh', 'gelu_tanh', 'quick_gelu', 'relu'] as const);
  }
  section(key: string): Section | null {
    return this.pick(key).section(key, true);
  }
  raw(key: string): unknown {
    const s = this.pick(key);
    return s.has(key) ? rawOf(s, key) : undefined;
  }
}

function intList(sec: Section, key: string, json: unknown, fallback: number[]): number[] {
  if (json === undefined || json === null) return fallback;
  if (!Array.isArray(json) || !json.every((v) => Number.isInteger(v) && v >= 0)) sec.fail(key, 'must be a list of non-negative integers', json);
  return json as number[];
}

/** A key's raw JSON value (Section has typed readers only; lists are validated by the caller). */
function rawOf(sec: Section, key: string): unknown {
  return (sec as unknown as { obj: Record<string, unknown> }).obj[key];
}

function readRope(tr: TextReader): { theta: number; section: [number, number, number]; interleaved: boolean } {
  // transformers 5 spelling first, then the older rope_scaling.
  const params = tr.section('rope_parameters') ?? tr.section('rope_scaling');
  if (!params) throw new ConfigError('config: rope_scaling (or rope_parameters) with mrope_section is required but missing');
  const sectionJson = rawOf(params, 'mrope_section');
  const section = intList(params, 'mrope_section', sectionJson, []);
  if (section.length !== 3) params.fail('mrope_section', 'must be a list of 3 integers (t, h, w frequencies)', sectionJson);
  const theta = params.has('rope_theta') ? params.num('rope_theta', { min: 0, exclusiveMin: true }) : tr.num('rope_theta', { min: 0, exclusiveMin: true, default: 10000 });
  const interleaved = params.has('mrope_interleaved') ? params.bool('mrope_interleaved') : false;
  return { theta, section: section as [number, number, number], interleaved };
}

function readText(family: QwenFamily, top: Section): QwenTextConfig {
  const textSec = top.section('text_config', true);
  const tr = new TextReader(top, textSec);
  const hiddenSize = tr.int('hidden_size', { min: 1 });
  const numHeads = tr.int('num_attention_heads', { min: 1 });
  const numKvHeads = tr.has('num_key_value_heads') ? tr.int('num_key_value_heads', { min: 1 }) : numHeads;
  if (numHeads % numKvHeads !== 0) throw new ConfigError(`config: num_attention_heads ${numHeads} is not a multiple of num_key_value_heads ${numKvHeads}`);
  const headDim = tr.has('head_dim') ? tr.int('head_dim', { min: 2 }) : hiddenSize / numHeads;
  if (!Number.isInteger(headDim) || headDim % 2) throw new ConfigError(`config: head_dim ${headDim} (hidden_size / num_attention_heads) must be an even integer`);
  const rope = readRope(tr);
  if (rope.section[0] + rope.section[1] + rope.section[2] !== headDim / 2) {
    throw new ConfigError(`config: mrope_section [${rope.section}] must sum to head_dim/2 = ${headDim / 2}`);
  }
  const isMoe = family === 'qwen3_vl_moe';
  let moe: QwenMoEConfig | null = null;
  if (isMoe) {
    const numExperts = tr.has('num_experts') ? tr.int('num_experts', { min: 1 }) : tr.int('num_local_experts', { min: 1 });
    const topK = tr.int('num_experts_per_tok', { min: 1, max: numExperts });
    const mlpOnlyJson = tr.raw('mlp_only_layers');
    moe = {
      numExperts,
      topK,
      intermediateSize: tr.int('moe_intermediate_size', { min: 1 }),
      normTopkProb: tr.has('norm_topk_prob') ? tr.bool('norm_topk_prob') : true,
      decoderSparseStep: tr.has('decoder_sparse_step') ? tr.int('decoder_sparse_step', { min: 1 }) : 1,
      mlpOnlyLayers: intList(textSec ?? top, 'mlp_only_layers', mlpOnlyJson, []),
    };
  }
  const qwen3 = family === 'qwen3_vl' || family === 'qwen3_vl_moe';
  // tie_word_embeddings describes the whole model: the top level wins (the 5.18 text_config copy can differ).
  const tie = top.has('tie_word_embeddings') ? top.bool('tie_word_embeddings') : tr.has('tie_word_embeddings') ? tr.bool('tie_word_embeddings') : false;
  return {
    vocabSize: tr.int('vocab_size', { min: 1 }),
    hiddenSize,
    numLayers: tr.int('num_hidden_layers', { min: 1 }),
    numHeads,
    numKvHeads,
    headDim,
    intermediateSize: tr.has('intermediate_size') ? tr.int('intermediate_size', { min: 1 }) : 4 * hiddenSize,
    hiddenAct: tr.str('hidden_act', 'silu'),
    rmsNormEps: tr.has('rms_norm_eps') ? tr.num('rms_norm_eps', { min: 0, exclusiveMin: true }) : 1e-6,
    ropeTheta: rope.theta,
    mropeSection: rope.section,
    mropeInterleaved: rope.interleaved,
    // Qwen2/2.5 always have q/k/v bias (no key in their configs); Qwen3 reads attention_bias.
    attentionBias: qwen3 ? (tr.has('attention_bias') ? tr.bool('attention_bias') : false) : true,
    qkNorm: qwen3,
    tieWordEmbeddings: tie,
    maxPositionEmbeddings: tr.has('max_position_embeddings') ? tr.int('max_position_embeddings', { min: 1 }) : 32768,
    moe,
  };
}

function readVision(family: QwenFamily, top: Section, textHidden: number): QwenVisionConfig {
  const v = top.section('vision_config')!;
  const act = (fallback: string): string =>
    v.has('hidden_act') ? v.oneOf('hidden_act', ['silu', 'swish', 'gelu', 'gelu_pytorch_tanh', 'gelu_tanh', 'quick_gelu', 'relu'] as const) : fallback;
  const inChannels = v.has('in_channels') ? v.int('in_channels', { min: 1 }) : v.has('in_chans') ? v.int('in_chans', { min: 1 }) : 3;
  const common = {
    patchSize: v.int('patch_size', { min: 1, default: 14 }),
    temporalPatchSize: v.int('temporal_patch_size', { min: 1, default: 2 }),
    mergeSize: v.int('spatial_merge_size', { min: 1, default: 2 }),
    inChannels,
    normEps: 1e-6,
    ropeTheta: v.has('rope_parameters') ? (v.section('rope_parameters')!.has('rope_theta') ? v.section('rope_parameters')!.num('rope_theta', { min: 0, exclusiveMin: true }) : 10000) : 10000,
  };
  if (family === 'qwen2_vl') {
    const C = v.int('embed_dim', { min: 1 });
    return {
      ...common,
      depth: v.int('depth', { min: 1 }),
      hiddenSize: C,
      numHeads: v.int('num_heads', { min: 1 }),
      intermediateSize: Math.round(C * v.num('mlp_ratio', { min: 0, exclusiveMin: true, default: 4 })),
      hiddenAct: act('quick_gelu'),
      // Qwen2-VL's vision_config.hidden_size is the merger output (the LLM width).
      outHiddenSize: v.has('hidden_size') ? v.int('hidden_size', { min: 1 }) : textHidden,
      norm: 'layernorm',
      mlp: 'fc',
      patchBias: false,
      windowSize: 0,
      fullattBlockIndexes: [],
      tokensPerSecond: 1,
      numPositionEmbeddings: 0,
      deepstackVisualIndexes: [],
    };
  }
  const C = v.int('hidden_size', { min: 1 });
  const base = {
    ...common,
    depth: v.int('depth', { min: 1 }),
    hiddenSize: C,
    numHeads: v.int('num_heads', { min: 1 }),
    intermediateSize: v.int('intermediate_size', { min: 1 }),
    outHiddenSize: v.has('out_hidden_size') ? v.int('out_hidden_size', { min: 1 }) : textHidden,
  };
  if (family === 'qwen2_5_vl') {
    return {
      ...base,
      hiddenAct: act('silu'),
      norm: 'rmsnorm',
      mlp: 'gated',
      patchBias: false,
      windowSize: v.int('window_size', { min: 0, default: 112 }),
      fullattBlockIndexes: intList(v, 'fullatt_block_indexes', rawOf(v, 'fullatt_block_indexes'), []),
      tokensPerSecond: v.num('tokens_per_second', { min: 0, default: 2 }),
      numPositionEmbeddings: 0,
      deepstackVisualIndexes: [],
    };
  }
  return {
    ...base,
    hiddenAct: act('gelu_pytorch_tanh'),
    norm: 'layernorm',
    mlp: 'fc',
    patchBias: true,
    windowSize: 0,
    fullattBlockIndexes: [],
    tokensPerSecond: 1,
    numPositionEmbeddings: v.int('num_position_embeddings', { min: 1, default: 2304 }),
    deepstackVisualIndexes: intList(v, 'deepstack_visual_indexes', rawOf(v, 'deepstack_visual_indexes'), []),
  };
}

function checkVision(v: QwenVisionConfig): void {
  if (v.hiddenSize % v.numHeads !== 0) throw new ConfigError(`config: vision_config hidden size ${v.hiddenSize} is not a multiple of num_heads ${v.numHeads}`);
  const hd = v.hiddenSize / v.numHeads;
  if (hd % 4 !== 0) throw new ConfigError(`config: vision head dim ${hd} must be a multiple of 4 (2-D RoPE)`);
  if (v.numPositionEmbeddings > 0 && !Number.isInteger(Math.sqrt(v.numPositionEmbeddings))) {
    throw new ConfigError(`config: vision_config.num_position_embeddings ${v.numPositionEmbeddings} must be a square`);
  }
  for (const i of [...v.fullattBlockIndexes, ...v.deepstackVisualIndexes]) {
    if (i >= v.depth) throw new ConfigError(`config: vision block index ${i} is out of range for depth ${v.depth}`);
  }
  if (v.windowSize > 0 && v.windowSize % (v.patchSize * v.mergeSize) !== 0) {
    throw new ConfigError(`config: vision_config.window_size ${v.windowSize} must be a multiple of patch_size·spatial_merge_size = ${v.patchSize * v.mergeSize}`);
  }
}

/**
 * Parses a Qwen-VL config.json object. `file` names the file in errors.
 * Throws ConfigError for an unknown model type (listing the supported ones) or a bad key.
 */
export function parseQwenConfig(json: unknown, file = 'config.json'): QwenVLConfig {
  return inFile(file, () => {
    const top = Section.root(json, file);
    const obj = json as Record<string, unknown>;
    const family = detectFamily(obj);
    if (!family) {
      throw new ConfigError(
        `config: model_type ${JSON.stringify(obj['model_type'])} (architectures ${JSON.stringify(obj['architectures'] ?? null)}) is not a supported Qwen-VL model; supported: ${QWEN_FAMILIES.join(', ')}`,
      );
    }
    const text = readText(family, top);
    const vision = readVision(family, top, text.hiddenSize);
    checkVision(vision);
    if (vision.outHiddenSize !== text.hiddenSize) {
      throw new ConfigError(`config: vision_config out hidden size ${vision.outHiddenSize} differs from the text hidden_size ${text.hiddenSize}`);
    }
    const tokenId = (key: string, fallback: number): number => (top.has(key) ? top.int(key, { min: 0, max: text.vocabSize - 1 }) : fallback);
    const textSec = top.section('text_config', true);
    const bos = top.has('bos_token_id') ? top.int('bos_token_id', { min: 0 }) : textSec?.has('bos_token_id') ? textSec.int('bos_token_id', { min: 0 }) : null;
    return {
      family,
      modelType: family,
      architectures: Array.isArray(obj['architectures']) ? (obj['architectures'] as string[]) : [QWEN_ARCHITECTURES[family]],
      text,
      vision,
      imageTokenId: tokenId('image_token_id', 151655),
      videoTokenId: tokenId('video_token_id', 151656),
      visionStartTokenId: tokenId('vision_start_token_id', 151652),
      visionEndTokenId: tokenId('vision_end_token_id', 151653),
      bosTokenId: bos,
    };
  });
}

/** Is text layer i an MoE layer (Qwen3-VL-MoE: not in mlp_only_layers and (i+1) % decoder_sparse_step == 0)? */
export function isMoeLayer(t: QwenTextConfig, i: number): boolean {
  const m = t.moe;
  return !!m && !m.mlpOnlyLayers.includes(i) && (i + 1) % m.decoderSparseStep === 0;
}

/** Vision attention head dim. */
export const visionHeadDim = (v: QwenVisionConfig): number => v.hiddenSize / v.numHeads;

/** Values in one flattened patch row: C · T · P · P. */
export const visionPatchDim = (v: QwenVisionConfig): number => v.inChannels * v.temporalPatchSize * v.patchSize * v.patchSize;
