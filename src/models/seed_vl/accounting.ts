/**
 * Parameter and FLOP accounting computed from the config alone — no weights
 * are allocated, so the full-size preset (hundreds of GB of weights) can be
 * counted on any machine. The counts mirror the module tree exactly; a test
 * checks them against `numParameters()` of instantiated small models.
 *
 * FLOP conventions (forward pass, one multiply-add = 2 FLOPs):
 * - matrix products only; norms, activations, RoPE, softmax and routing
 *   arithmetic are ignored (they are O(width) per token, not O(width²));
 * - the input embedding is a table lookup (0 FLOPs); the output head costs
 *   2·vocab·width even when tied;
 * - MoE layers count only the k selected experts plus shared experts and the router;
 * - attention scores: QKᵀ and A·V cost 2·2·n·m·head_dim per head for n queries
 *   over m keys. For text tokens `flopsPerToken` takes the context length as a
 *   parameter (default 0: the classic "2 × active parameters" figure).
 */
import {
  type SeedVLConfig, type VisionConfig, type LanguageConfig, type AdapterConfig,
  visionHeadDim, visionMlpSize, patchDim, tokenPixels, isMoELayer,
} from './config.ts';

const linearParams = (inF: number, outF: number, bias: boolean): number => inF * outF + (bias ? outF : 0);
const swigluParams = (d: number, i: number): number => 3 * d * i;

// ---------------------------------------------------------------- parameters

export function visionBlockParams(v: VisionConfig): number {
  const c = v.hiddenSize;
  const m = visionMlpSize(v);
  return 2 * c + linearParams(c, 3 * c, true) + linearParams(c, c, true) + 2 * c + linearParams(c, m, true) + linearParams(m, c, true);
}

export function visionParams(v: VisionConfig): number {
  return linearParams(patchDim(v), v.hiddenSize, true) + v.numLayers * visionBlockParams(v) + 2 * v.hiddenSize;
}

export function adapterParams(a: AdapterConfig, visionWidth: number, llmWidth: number): number {
  return linearParams(visionWidth, a.hiddenSize, true) + linearParams(a.hiddenSize, llmWidth, true);
}

export function attentionParams(l: LanguageConfig): number {
  const d = l.hiddenSize;
  const q = l.numHeads * l.headDim;
  const kv = l.numKvHeads * l.headDim;
  return linearParams(d, q, l.attentionBias) + 2 * linearParams(d, kv, l.attentionBias) + linearParams(q, d, false);
}

/** One expert (SwiGLU gate/up/down, no bias). */
export function expertParams(l: LanguageConfig): number {
  return l.moe ? swigluParams(l.hiddenSize, l.moe.intermediateSize) : 0;
}

/** Router weight [E, d] plus the sigmoid family's correction bias [E]. */
export function routerParams(l: LanguageConfig): number {
  const m = l.moe;
  if (!m) return 0;
  return m.numExperts * l.hiddenSize + (m.scoringFunc === 'sigmoid' ? m.numExperts : 0);
}

export interface LayerParams {
  total: number;
  active: number;
}

/** Decoder layer i: norms, attention and its feed-forward (dense or MoE). */
export function decoderLayerParams(l: LanguageConfig, i: number): LayerParams {
  const base = 2 * l.hiddenSize + attentionParams(l);
  if (!isMoELayer(l, i)) {
    const p = base + swigluParams(l.hiddenSize, l.intermediateSize);
    return { total: p, active: p };
  }
  const m = l.moe!;
  const shared = m.numSharedExperts > 0 ? swigluParams(l.hiddenSize, m.numSharedExperts * m.intermediateSize) : 0;
  const fixed = base + routerParams(l) + shared;
  return { total: fixed + m.numExperts * expertParams(l), active: fixed + m.numExpertsPerTok * expertParams(l) };
}

export function languageParams(l: LanguageConfig): LayerParams {
  const emb = l.vocabSize * l.hiddenSize;
  const head = l.tieWordEmbeddings ? 0 : l.vocabSize * l.hiddenSize;
  let total = emb + head + l.hiddenSize;
  let active = total;
  for (let i = 0; i < l.numLayers; i++) {
    const p = decoderLayerParams(l, i);
    total += p.total;
    active += p.active;
  }
  return { total, active };
}

// ---------------------------------------------------------------- FLOPs

/** Forward FLOPs of one text token attending over `context` earlier positions (see file comment). */
export function flopsPerToken(l: LanguageConfig, context = 0): number {
  let f = 2 * l.vocabSize * l.hiddenSize; // output head
  for (let i = 0; i < l.numLayers; i++) {
    const p = decoderLayerParams(l, i);
    // Matmul weights = active params minus the two RMSNorm vectors and any bias vectors
    // (bias adds are not products) and the correction bias (a comparison, not a product).
    let matmul = p.active - 2 * l.hiddenSize;
    if (l.attentionBias) matmul -= (l.numHeads + 2 * l.numKvHeads) * l.headDim;
    if (isMoELayer(l, i) && l.moe!.scoringFunc === 'sigmoid') matmul -= l.moe!.numExperts;
    f += 2 * matmul + 4 * l.numHeads * l.headDim * context;
  }
  return f;
}

export interface ImageFlops {
  /** ViT tokens (patches). */
  patches: number;
  /** LLM tokens after 2×2 pooling. */
  llmTokens: number;
  /** Seed-ViT forward (patch embedding, blocks incl. full attention within the image). */
  vision: number;
  /** Adapter MLP on the pooled tokens. */
  adapter: number;
}

/** Forward FLOPs for one image of height × width pixels (both multiples of patch·merge, 28). */
export function imageFlops(cfg: SeedVLConfig, height: number, width: number): ImageFlops {
  const v = cfg.vision;
  const unit = tokenPixels(v);
  if (!Number.isInteger(height) || !Number.isInteger(width) || height <= 0 || width <= 0 || height % unit !== 0 || width % unit !== 0) {
    throw new RangeError(`imageFlops: image ${width}×${height} px is not a positive multiple of ${unit} in both sides; resize first (nearestImageSize)`);
  }
  const n = (height / v.patchSize) * (width / v.patchSize);
  const c = v.hiddenSize;
  const m = visionMlpSize(v);
  const perLayerLinear = 2 * n * (3 * c * c + c * c + 2 * c * m);
  const perLayerAttn = 4 * n * n * visionHeadDim(v) * v.numHeads;
  const vision = 2 * n * patchDim(v) * c + v.numLayers * (perLayerLinear + perLayerAttn);
  const llmTokens = n / (v.mergeSize * v.mergeSize);
  const adapter = 2 * llmTokens * (c * cfg.adapter.hiddenSize + cfg.adapter.hiddenSize * cfg.language.hiddenSize);
  return { patches: n, llmTokens, vision, adapter };
}

/** Rounds a side to the nearest multiple of 28 px (at least 28), as smart-resize does for in-range sizes. */
export function nearestImageSide(cfg: SeedVLConfig, side: number): number {
  const unit = tokenPixels(cfg.vision);
  return Math.max(unit, Math.round(side / unit) * unit);
}

// ---------------------------------------------------------------- summary

export interface ModelAccounting {
  vision_params: number;
  adapter_params: number;
  language_params_total: number;
  language_params_active: number;
  total_params: number;
  active_params: number;
  flops_per_token: number;
  vision_flops_1024x1024: number;
}

/**
 * The numbers `seedvl info --json` prints. `vision_flops_1024x1024` is the
 * Seed-ViT forward on a 1024×1024 image after rounding its sides to the nearest
 * multiple of 28 (1036×1036 = 74×74 patches), since the model cannot take 1024 directly.
 */
export function accountModel(cfg: SeedVLConfig): ModelAccounting {
  const vp = visionParams(cfg.vision);
  const ap = adapterParams(cfg.adapter, cfg.vision.hiddenSize, cfg.language.hiddenSize);
  const lp = languageParams(cfg.language);
  const side = nearestImageSide(cfg, 1024);
  return {
    vision_params: vp,
    adapter_params: ap,
    language_params_total: lp.total,
    language_params_active: lp.active,
    total_params: vp + ap + lp.total,
    active_params: vp + ap + lp.active,
    flops_per_token: flopsPerToken(cfg.language),
    vision_flops_1024x1024: imageFlops(cfg, side, side).vision,
  };
}
