/**
 * Named Seed1.5-VL configurations. Each is a plain config (validated through
 * `makeConfig`), so presets cost nothing to build and the full-size one can be
 * counted without allocating weights (`accounting.ts`).
 */
import { type SeedVLConfig, type VisionConfig, makeConfig, ConfigError } from './config.ts';

/** Seed-ViT exactly as Table 1 of the report (532M parameters with the project-default block, spec §2.2). */
export const SEED_VIT: VisionConfig = {
  patchSize: 14,
  inChannels: 3,
  hiddenSize: 1280,
  numLayers: 27,
  numHeads: 20,
  mlpRatio: 4,
  hiddenAct: 'gelu',
  layerNormEps: 1e-6,
  ropeTheta: 10000,
  mergeSize: 2,
};

/**
 * `seed1.5-vl`: the full model. Seed-ViT is Table 1 of the report.
 *
 * The language model's shape is NOT disclosed (spec §2.5, §14 #1). This preset is
 * OUR ASSUMPTION, chosen only to match the one reported figure, "about 20B active
 * parameters" (≈20.0B active here), and the unconfirmed "200B total" hint (≈187B here):
 * - 60 decoder layers, width 5120, grouped-query attention with 64 query heads and
 *   8 key/value heads of dim 128, 1D RoPE θ = 10⁶, untied output head;
 * - DeepSeek-V3-style MoE (open-models §8): 128 routed experts of SwiGLU width 1536,
 *   top-8, sigmoid scores with a correction bias, 8 groups / 4 kept, weights
 *   renormalised × 2.5, one shared expert; the first layer is dense (width 13824 =
 *   9 × 1536, i.e. the same compute as an MoE layer);
 * - vocabulary 155,136 with the special ids placed in its reserved tail.
 * Replace every one of these numbers when real weights say otherwise.
 */
export function seed15vl(): SeedVLConfig {
  return makeConfig({
    modelType: 'seed_vl',
    vision: { ...SEED_VIT },
    adapter: { hiddenSize: 5120, hiddenAct: 'gelu' },
    language: {
      vocabSize: 155136,
      hiddenSize: 5120,
      numLayers: 60,
      numHeads: 64,
      numKvHeads: 8,
      headDim: 128,
      intermediateSize: 13824,
      rmsNormEps: 1e-6,
      ropeTheta: 1e6,
      maxPositionEmbeddings: 131072,
      tieWordEmbeddings: false,
      attentionBias: false,
      initializerRange: 0.02,
      moe: {
        numExperts: 128,
        numExpertsPerTok: 8,
        intermediateSize: 1536,
        scoringFunc: 'sigmoid',
        normTopkProb: true,
        nGroup: 8,
        topkGroup: 4,
        routedScalingFactor: 2.5,
        numSharedExperts: 1,
        firstKDenseReplace: 1,
        layerFreq: 1,
        auxLossCoef: 0.001,
        zLossCoef: 0,
      },
    },
    soiTokenId: 155100,
    eoiTokenId: 155101,
    imageTokenId: 155102,
    eosTokenId: 155103,
    padTokenId: 155104,
  });
}

/**
 * `tiny` (≈1.46M parameters): for tests. Every feature is on — a dense first layer,
 * MoE layers with softmax top-2 routing and a shared expert, GQA, q/k/v bias —
 * so tests exercise all code paths quickly. Special ids 2/3/4, eos 1, pad 0.
 */
export function tiny(): SeedVLConfig {
  return makeConfig({
    modelType: 'seed_vl',
    vision: { ...SEED_VIT, hiddenSize: 64, numLayers: 2, numHeads: 4 },
    adapter: { hiddenSize: 128, hiddenAct: 'gelu' },
    language: {
      vocabSize: 1024,
      hiddenSize: 128,
      numLayers: 4,
      numHeads: 4,
      numKvHeads: 2,
      headDim: 32,
      intermediateSize: 256,
      rmsNormEps: 1e-6,
      ropeTheta: 10000,
      maxPositionEmbeddings: 4096,
      tieWordEmbeddings: false,
      attentionBias: true,
      initializerRange: 0.02,
      moe: {
        numExperts: 4,
        numExpertsPerTok: 2,
        intermediateSize: 128,
        scoringFunc: 'softmax',
        normTopkProb: true,
        nGroup: 1,
        topkGroup: 1,
        routedScalingFactor: 1,
        numSharedExperts: 1,
        firstKDenseReplace: 1,
        layerFreq: 1,
        auxLossCoef: 0.01,
        zLossCoef: 0.001,
      },
    },
    soiTokenId: 2,
    eoiTokenId: 3,
    imageTokenId: 4,
    eosTokenId: 1,
    padTokenId: 0,
  });
}

/**
 * `small` (≈52M parameters, ≈35M active): for CPU training runs. A 6-layer, 384-wide
 * Seed-ViT (head dim 64 as in the full model) and an 8-layer, 512-wide MoE LLM with 8
 * experts of width 256, top-2, one shared expert, a dense first layer of width 768; tied embeddings over a
 * 16,384-token vocabulary (pair it with a tokenizer of that size or change vocab_size).
 */
export function small(): SeedVLConfig {
  return makeConfig({
    modelType: 'seed_vl',
    vision: { ...SEED_VIT, hiddenSize: 384, numLayers: 6, numHeads: 6 },
    adapter: { hiddenSize: 512, hiddenAct: 'gelu' },
    language: {
      vocabSize: 16384,
      hiddenSize: 512,
      numLayers: 8,
      numHeads: 8,
      numKvHeads: 4,
      headDim: 64,
      intermediateSize: 768,
      rmsNormEps: 1e-6,
      ropeTheta: 10000,
      maxPositionEmbeddings: 16384,
      tieWordEmbeddings: true,
      attentionBias: false,
      initializerRange: 0.02,
      moe: {
        numExperts: 8,
        numExpertsPerTok: 2,
        intermediateSize: 256,
        scoringFunc: 'softmax',
        normTopkProb: true,
        nGroup: 1,
        topkGroup: 1,
        routedScalingFactor: 1,
        numSharedExperts: 1,
        firstKDenseReplace: 1,
        layerFreq: 1,
        auxLossCoef: 0.01,
        zLossCoef: 0.001,
      },
    },
    soiTokenId: 2,
    eoiTokenId: 3,
    imageTokenId: 4,
    eosTokenId: 1,
    padTokenId: 0,
  });
}

export const PRESETS: Readonly<Record<string, () => SeedVLConfig>> = {
  'seed1.5-vl': seed15vl,
  tiny,
  small,
};

export const PRESET_NAMES = Object.keys(PRESETS);

/** A fresh copy of a named preset; throws naming the known ones. */
export function preset(name: string): SeedVLConfig {
  const f = PRESETS[name];
  if (!f) throw new ConfigError(`unknown preset '${name}' (known: ${PRESET_NAMES.join(', ')})`);
  return f();
}
