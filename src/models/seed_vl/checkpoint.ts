/**
 * Model directories: `config.json` (configToJSON) next to `model.safetensors`
 * (or shards + index) holding the state dict by dotted name. Saving is atomic
 * (src/io/checkpoint.ts writes a sibling directory and renames it). Loading
 * builds the model from the config and copies every tensor in, refusing
 * missing, unexpected or misshapen tensors by name.
 */
import { writeCheckpoint, openCheckpoint, CONFIG_FILE } from '../../io/checkpoint.ts';
import { ConfigError, configToJSON, parseConfig } from './config.ts';
import { SeedVLModel, type ModelOptions } from './model.ts';
import type { Tensor } from '../../tensor/index.ts';

export interface SaveOptions {
  /** Replace an existing directory (default: refuse). */
  overwrite?: boolean;
  /** Largest shard in bytes (default 5e9). */
  maxShardBytes?: number;
}

/** Writes `dir` with config.json and the weights (in their own dtypes). */
export function saveModel(model: SeedVLModel, dir: string, opts: SaveOptions = {}): void {
  writeCheckpoint(dir, model.stateDict(), {
    config: configToJSON(model.config),
    overwrite: opts.overwrite,
    maxShardBytes: opts.maxShardBytes,
    metadata: { format: 'pt', model_type: 'seed_vl' },
  });
}

/** Builds a model from `dir`'s config.json and loads its weights (cast to the model dtype). */
export function loadModel(dir: string, opts: ModelOptions = {}): SeedVLModel {
  const reader = openCheckpoint(dir);
  let model: SeedVLModel | null = null;
  const taken: Tensor[] = [];
  try {
    if (!reader.config) throw new ConfigError(`loadModel: ${dir} has no ${CONFIG_FILE}`);
    model = new SeedVLModel(parseConfig(reader.config), opts);
    const state: Record<string, Tensor> = {};
    for (const name of reader.names()) {
      const t = reader.get(name);
      taken.push(t);
      state[name] = t;
    }
    model.loadStateDict(state); // strict: names and shapes must match
    return model;
  } catch (e) {
    model?.dispose();
    throw e;
  } finally {
    for (const t of taken) t.dispose();
    reader.close();
  }
}
