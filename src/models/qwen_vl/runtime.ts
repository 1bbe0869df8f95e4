/**
 * Adapts QwenVLModel to the generation runtime's GenerationModel
 * (src/generation/model.ts); the slot bookkeeping is SlotRuntime's. Each
 * cache row also keeps its next M-RoPE
 * position (QwenCache.next), so decoding continues after the prompt's vision
 * blocks exactly as the reference does.
 */
import type { Tensor } from '../../tensor/index.ts';
import type { VisionInput } from '../../processing/chat_inputs.ts';
import { ModelInputError } from '../../generation/model.ts';
import { SlotRuntime, packVision, type SlotRuntimeOptions } from '../../generation/slot_runtime.ts';
import type { QwenVLModel, QwenCache, VisionBatch } from './model.ts';

export type QwenRuntimeOptions = SlotRuntimeOptions;

export class QwenVLRuntime extends SlotRuntime<QwenCache> {
  constructor(readonly model: QwenVLModel, opts: QwenRuntimeOptions) {
    const t = model.config.text;
    super(opts.name ?? model.config.family, t.vocabSize, t.maxPositionEmbeddings, opts);
  }

  protected createPool(rows: number, length: number): QwenCache {
    return this.model.createCache(rows, length);
  }

  protected runRows(pool: QwenCache, ids: Int32Array, rowLengths: number[], media: VisionInput[]): Tensor {
    if (media.some((v) => v.kind === 'video_frame')) {
      throw new ModelInputError(`${this.name}: single video frames are not supported; give the video as one part (Qwen templates expand whole videos)`);
    }
    const images = imageBatch(media.filter((v) => v.kind === 'image'));
    const videos = videoBatch(media.filter((v) => v.kind === 'video'));
    try {
      return this.model.prefill(pool, { inputIds: ids, rowLengths, ...(images ? { images } : {}), ...(videos ? { videos } : {}) });
    } catch (e) {
      if (e instanceof RangeError) throw new ModelInputError(e.message);
      throw e;
    }
  }

  protected disposeModel(): void {
    this.model.dispose();
  }
}

/** Processed images → packed patch rows and (t, h, w) grids. */
export function imageBatch(vision: readonly VisionInput[]): VisionBatch | undefined {
  return packVision(vision);
}

/** Processed whole videos → packed patch rows, (t, h, w) grids and seconds per temporal patch. */
export function videoBatch(vision: readonly VisionInput[]): VisionBatch | undefined {
  const b = packVision(vision);
  if (!b) return undefined;
  return { ...b, secondPerGrid: vision.map((v) => v.secondPerGrid ?? 1) };
}
