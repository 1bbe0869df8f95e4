/**
 * Loading a Hugging Face Qwen-VL directory: config.json (either spelling),
 * model.safetensors or shards + index, generation_config.json (stop ids),
 * preprocessor_config.json (image processing). Weights stay in their stored
 * dtype and are memory-mapped (bf16 zero-copy). The tokenizer is loaded by
 * the runtime (registry.ts), not here, so model-only uses (golden checks) work
 * on directories without one. A directory written by `seedvl quantize`
 * (config.json's quantization_config, quant_config.ts) loads its quantised
 * Linears straight from the mapped packed tensors: no re-quantisation.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { openCheckpoint } from '../../io/checkpoint.ts';
import { visionConfigFromHf, QWEN2_VL_VISION, QWEN3_VL_VISION, type VisionPreprocessConfig } from '../../processing/vision_config.ts';
import { ConfigError, parseQwenConfig, type QwenVLConfig } from './config.ts';
import { WeightStore, readerSource } from './weights.ts';
import { buildQwenModel } from './build.ts';
import { parseQwenQuantConfig, type QwenQuantConfig } from './quant_config.ts';
import type { QwenVLModel } from './model.ts';

export interface LoadQwenOptions {
  /** 'stored' (default: bf16 stays bf16) or 'float32' (f32 copies of every matrix). */
  weights?: 'stored' | 'float32';
  /** Fused MoE experts: zero-copy views of the file ('view', default) or contiguous [out, in] copies ('copy'); see weights.ts. */
  experts?: 'view' | 'copy';
}

export interface LoadedQwen {
  model: QwenVLModel;
  config: QwenVLConfig;
  dir: string;
  /** Image preprocessing from preprocessor_config.json (family defaults when absent). */
  imageProcessor: VisionPreprocessConfig;
  /** Token ids that end generation (generation_config.json eos_token_id, or config.json's). */
  eosTokenIds: number[];
  /** How the directory is quantised on disk (null: float weights). */
  quantization: QwenQuantConfig | null;
  warnings: string[];
}

/** Parses a JSON file, naming it in errors; null when absent and optional. */
export function readJsonFile(path: string, optional = false): Record<string, unknown> | null {
  if (!existsSync(path)) {
    if (optional) return null;
    throw new ConfigError(`${path}: file not found`);
  }
  let v: unknown;
  try {
    v = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new ConfigError(`${path}: not valid JSON (${(e as Error).message})`);
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new ConfigError(`${path}: must hold a JSON object`);
  return v as Record<string, unknown>;
}

function idList(v: unknown): number[] {
  if (typeof v === 'number' && Number.isInteger(v)) return [v];
  if (Array.isArray(v)) return v.filter((x): x is number => typeof x === 'number' && Number.isInteger(x));
  return [];
}

/** Reads config.json of `dir` (throws naming the file when missing or bad). */
export function readQwenConfig(dir: string): QwenVLConfig {
  const file = join(dir, 'config.json');
  return parseQwenConfig(readJsonFile(file), file);
}

export function loadQwenModel(dirIn: string, opts: LoadQwenOptions = {}): LoadedQwen {
  const dir = resolve(dirIn);
  const config = readQwenConfig(dir);
  const quantization = parseQwenQuantConfig(readJsonFile(join(dir, 'config.json'))!, join(dir, 'config.json'));
  const warnings: string[] = [];
  const reader = openCheckpoint(dir, { onWarning: (m) => warnings.push(m) });
  let model: QwenVLModel;
  try {
    const store = new WeightStore(readerSource(reader), {
      dtype: opts.weights ?? 'stored', numExperts: config.text.moe?.numExperts ?? 0, expertLayout: opts.experts ?? 'view',
      ...(quantization ? { quantized: { bits: quantization.bits, modules: quantization.modules } } : {}),
    });
    model = buildQwenModel(config, store);
  } finally {
    reader.close(); // tensors keep their mappings alive
  }
  const gen = readJsonFile(join(dir, 'generation_config.json'), true);
  const cfgJson = readJsonFile(join(dir, 'config.json'))!;
  const textJson = (cfgJson['text_config'] ?? {}) as Record<string, unknown>;
  let eos = idList(gen?.['eos_token_id']);
  if (!eos.length) eos = idList(cfgJson['eos_token_id'] ?? textJson['eos_token_id']);
  if (!eos.length) {
    eos = [151645, 151643];
    warnings.push(`${dir}: no eos_token_id in generation_config.json or config.json; stopping on <|im_end|> and <|endoftext|>`);
  }
  const qwen3 = config.family === 'qwen3_vl' || config.family === 'qwen3_vl_moe';
  const pre = readJsonFile(join(dir, 'preprocessor_config.json'), true);
  const fallback = qwen3 ? QWEN3_VL_VISION : QWEN2_VL_VISION;
  if (!pre) warnings.push(`${dir}: no preprocessor_config.json; using the ${config.family} image processor defaults`);
  const imageProcessor = pre ? visionConfigFromHf(pre, fallback) : fallback;
  const v = config.vision;
  if (imageProcessor.patchSize !== v.patchSize || imageProcessor.mergeSize !== v.mergeSize || imageProcessor.temporalPatchSize !== v.temporalPatchSize) {
    throw new ConfigError(
      `${join(dir, 'preprocessor_config.json')}: patch_size ${imageProcessor.patchSize} / merge_size ${imageProcessor.mergeSize} / temporal_patch_size ${imageProcessor.temporalPatchSize} ` +
        `disagree with config.json's vision_config (${v.patchSize} / ${v.mergeSize} / ${v.temporalPatchSize})`,
    );
  }
  return { model, config, dir, imageProcessor, eosTokenIds: eos, quantization, warnings };
}
