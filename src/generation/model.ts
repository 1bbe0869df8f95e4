/**
 * What the generation runtime needs from a model, and nothing more. A model
 * (Seed1.5-VL, Qwen-VL, the test LMs) is adapted to this interface once; the
 * samplers, the scheduler, the providers and the server only ever see it.
 *
 * Shapes: V = vocabulary size, B = sequences decoded together in one step.
 * Every call is synchronous native compute; the runtime interleaves calls of
 * different requests (continuous batching), so a model must keep all
 * per-sequence state in its `SequenceCache`, never in itself.
 */
import type { Tensor } from '../tensor/index.ts';
import type { ModelInputs } from '../processing/chat_inputs.ts';

/** The KV cache (and any other state) of one sequence. */
export interface SequenceCache {
  /** Tokens already in the cache (prompt + generated). */
  readonly length: number;
  /** Most tokens this cache can hold. */
  readonly capacity: number;
  /** Frees the cache's memory; the cache is unusable afterwards. Idempotent. */
  dispose(): void;
}

/** Model input for a prompt: token ids and, for multimodal models, the processed media. */
export type PrefillInputs = Pick<ModelInputs, 'inputIds'> & Partial<Pick<ModelInputs, 'visionMask' | 'vision'>>;

export interface GenerationModel {
  /** Shown in `/v1/models` and logs. */
  readonly name: string;
  readonly vocabSize: number;
  /** Longest sequence (prompt + generation) the model accepts. */
  readonly maxSequenceLength: number;
  /** True when prefill accepts `vision` inputs (images, video frames). */
  readonly acceptsVision: boolean;

  /** An empty cache for a sequence of up to `capacity` tokens. */
  createCache(capacity: number): SequenceCache;

  /**
   * Runs the prompt through the model, filling `cache` (which must be empty),
   * and returns the logits of the last position: float32 [V]. The caller disposes it.
   */
  prefill(inputs: PrefillInputs, cache: SequenceCache): Tensor;

  /**
   * One step for B sequences at once: appends `tokens[b]` to `caches[b]` and
   * returns the next-token logits, float32 [B, V] (caller disposes). The
   * sequences may have different lengths; the batched result must equal B
   * separate calls up to float summation order.
   */
  decode(tokens: Int32Array, caches: readonly SequenceCache[]): Tensor;

  /**
   * Optional: appends new tokens to several sequences in one pass — prompts of
   * newly admitted requests and single tokens of running ones mixed — and
   * returns each item's last-position logits, float32 [items, V], in item
   * order. Lets the scheduler read the weights once per step instead of once
   * per prefill. Must leave every cache unchanged when it throws (the
   * scheduler then retries the items one by one to find the faulty request).
   */
  extend?(items: readonly ExtendItem[]): Tensor;

  /** Frees the weights. */
  dispose?(): void;
}

export interface ExtendItem {
  cache: SequenceCache;
  /** The tokens to append (a whole prompt with its media, or one generated token). */
  inputs: PrefillInputs;
}

/** Thrown by models for inputs they cannot take (too long, media on a text model). */
export class ModelInputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ModelInputError';
  }
}
