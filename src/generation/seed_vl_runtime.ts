/**
 * Adapts `SeedVLModel` (src/models/seed_vl) to the runtime's GenerationModel:
 * the slot bookkeeping is SlotRuntime's; this says how to make Seed's cache
 * and run packed rows with their images.
 */
import type { Tensor } from '../tensor/index.ts';
import type { SeedVLModel } from '../models/seed_vl/model.ts';
import type { KVCache } from '../models/seed_vl/kv_cache.ts';
import type { ImageBatch } from '../models/seed_vl/inputs.ts';
import type { VisionInput } from '../processing/chat_inputs.ts';
import { releaseQuantized } from './quantize_model.ts';
import { SlotRuntime, packVision, type SlotRuntimeOptions } from './slot_runtime.ts';

export type SeedVLRuntimeOptions = SlotRuntimeOptions;

export class SeedVLRuntime extends SlotRuntime<KVCache> {
  constructor(readonly model: SeedVLModel, opts: SeedVLRuntimeOptions) {
    const l = model.config.language;
    super(opts.name ?? 'seed-vl', l.vocabSize, l.maxPositionEmbeddings, opts);
    model.eval();
  }

  protected createPool(rows: number, length: number): KVCache {
    return this.model.createCache(rows, length);
  }

  protected runRows(pool: KVCache, ids: Int32Array, rowLengths: number[], media: VisionInput[]): Tensor {
    const images = imageBatch(media);
    return this.model.prefill(pool, { inputIds: ids, rowLengths, ...(images ? { images } : {}) });
  }

  protected disposeModel(): void {
    releaseQuantized(this.model);
    this.model.dispose();
  }
}

/** Processed images/frames → the model's packed patch rows and grids. */
export function imageBatch(vision: readonly VisionInput[]): ImageBatch | undefined {
  return packVision(vision);
}
