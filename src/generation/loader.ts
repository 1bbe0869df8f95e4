/**
 * Loads what the runtime serves: a model directory (our config.json +
 * safetensors, float or quantised) or a random-initialised preset, with its
 * tokenizer, wrapped as a GenerationModel. Reports progress per tensor so the
 * CLI can draw a bar.
 */
import { existsSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { openCheckpoint } from '../io/index.ts';
import { manualSeed, type Tensor } from '../tensor/index.ts';
import { Tokenizer } from '../processing/tokenizer.ts';
import { SeedVLModel } from '../models/seed_vl/model.ts';
import { parseConfig, ConfigError, type SeedVLConfig } from '../models/seed_vl/config.ts';
import { preset as presetConfig } from '../models/seed_vl/presets.ts';
import { Linear } from '../nn/linear.ts';
import { SeedVLRuntime } from './seed_vl_runtime.ts';
import { presetTokenizer, checkTokenizerMatches } from './preset_tokenizer.ts';
import { installQuantized, quantizeModel, type QuantizeSpec } from './quantize_model.ts';
import { readQuantManifest, readQuantizedWeights } from './quant_checkpoint.ts';
import type { GenerationModel } from './model.ts';

export interface LoadProgress {
  stage: 'build' | 'weights' | 'quantize' | 'ready';
  done: number;
  total: number;
}

export interface LoadOptions {
  /** A model directory (config.json + safetensors). */
  model?: string;
  /** A preset name (random weights), e.g. 'tiny'. */
  preset?: string;
  /** Seed of the random initialisation (presets). */
  seed?: number;
  /** Sequences decoded together (KV cache rows). Default 4. */
  maxBatch?: number;
  /** Longest prompt + answer (KV cache positions). Default min(4096, max_position_embeddings). */
  maxContext?: number;
  /** Quantise the Linear weights after loading (a float checkpoint). */
  quantize?: QuantizeSpec;
  onProgress?: (p: LoadProgress) => void;
}

export interface LoadedModel {
  model: GenerationModel;
  tokenizer: Tokenizer;
  /** Model id for APIs and logs. */
  name: string;
  /** True for random-initialised presets: their answers are noise. */
  randomWeights: boolean;
  config: SeedVLConfig;
  /** e.g. 'float32', 'int8 (group 128)'. */
  weights: string;
  warnings: string[];
}

export async function loadGenerationModel(o: LoadOptions): Promise<LoadedModel> {
  if (!o.model === !o.preset) throw new Error('give exactly one of a model directory (--model) or a preset (--preset)');
  const progress = o.onProgress ?? (() => undefined);
  const warnings: string[] = [];
  let model: SeedVLModel;
  let tokenizer: Tokenizer;
  let name: string;
  let weights = 'float32';
  if (o.preset) {
    const cfg = presetConfig(o.preset);
    progress({ stage: 'build', done: 0, total: 1 });
    manualSeed(o.seed ?? 0);
    model = new SeedVLModel(cfg);
    progress({ stage: 'build', done: 1, total: 1 });
    tokenizer = presetTokenizer(model.config);
    name = `seed-vl-${o.preset}-random${o.seed !== undefined ? `-s${o.seed}` : ''}`;
  } else {
    const dir = resolve(o.model!);
    const reader = openCheckpoint(dir);
    try {
      if (!reader.config) throw new ConfigError(`${dir} has no config.json`);
      const cfg = parseConfig(reader.config);
      progress({ stage: 'build', done: 0, total: 1 });
      model = new SeedVLModel(cfg);
      progress({ stage: 'build', done: 1, total: 1 });
      const manifest = readQuantManifest(dir);
      const quantized = manifest ? readQuantizedWeights(reader, manifest) : new Map();
      const skip = new Set<string>();
      for (const [w] of quantized) for (const suffix of ['.qweight', '.scales']) skip.add(w + suffix);
      const names = reader.names().filter((n) => !skip.has(n));
      const own = model.stateDict();
      const missing = new Set(Object.keys(own).filter((k) => !quantized.has(k)));
      names.forEach((n, i) => {
        if (!(n in own)) throw new Error(`${dir}: tensor '${n}' does not belong to the model (${cfg.modelType})`);
        const t: Tensor = reader.get(n);
        try {
          model.loadStateDict({ [n]: t }, { strict: false });
        } finally {
          t.dispose();
        }
        missing.delete(n);
        progress({ stage: 'weights', done: i + 1, total: names.length });
      });
      for (const [w, qw] of quantized) {
        const lin = model.getModule(w.replace(/\.weight$/, ''));
        if (!(lin instanceof Linear)) throw new Error(`${dir}: quantised weight '${w}' is not a Linear layer's weight`);
        installQuantized(lin, qw);
      }
      if (missing.size) throw new Error(`${dir}: missing tensors: ${[...missing].slice(0, 8).join(', ')}${missing.size > 8 ? ` (+${missing.size - 8} more)` : ''}`);
      if (manifest) weights = `int${manifest.bits} (group ${manifest.group_size})`;
      if (existsSync(join(dir, 'tokenizer.json'))) tokenizer = await Tokenizer.fromFile(dir);
      else {
        tokenizer = presetTokenizer(cfg);
        warnings.push(`${dir} has no tokenizer.json; using the built-in byte-level tokenizer for this config`);
      }
      name = basename(dir);
    } finally {
      reader.close();
    }
  }
  checkTokenizerMatches(tokenizer, model.config);
  if (o.quantize) {
    progress({ stage: 'quantize', done: 0, total: 1 });
    const r = quantizeModel(model, o.quantize);
    weights = `int${o.quantize.bits} (group ${o.quantize.groupSize ?? (o.quantize.bits === 4 ? 32 : 128)}, ${r.layers} layers)`;
    progress({ stage: 'quantize', done: 1, total: 1 });
  }
  const maxContext = Math.min(o.maxContext ?? 4096, model.config.language.maxPositionEmbeddings);
  const runtime = new SeedVLRuntime(model, { maxBatch: o.maxBatch ?? 4, maxLength: maxContext, name });
  progress({ stage: 'ready', done: 1, total: 1 });
  return { model: runtime, tokenizer, name, randomWeights: !!o.preset, config: model.config, weights, warnings };
}
