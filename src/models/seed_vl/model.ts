/**
 * Seed1.5-VL glue (spec §2.1, §5): Seed-ViT → 2×2 pool + MLP adapter → image
 * tokens placed at the placeholder positions between [SOI] and [EOI] → MoE LLM.
 *
 * One definition, two uses:
 * - `forward(inputs)`: training and full evaluation on a packed stream of
 *   samples (several per row, attention never crossing them), with next-token
 *   cross-entropy on `labels` plus the MoE auxiliary losses;
 * - `createCache` / `prefill` / `decode`: inference with a KV cache — the
 *   prompt (text and images) first, then one token per sequence per step.
 */
import { Module } from '../../nn/index.ts';
import { Tensor, tensor, zeros, noGrad, tidy } from '../../tensor/index.ts';
import { addScaled, mulScalar, add } from '../../tensor/ops/elementwise.ts';
import { indexAdd, indexSelect } from '../../tensor/ops/indexing.ts';
import { crossEntropy } from '../../tensor/ops/loss.ts';
import { loadBalancingLoss, routerZLoss, type MoEOutput } from '../../nn/moe.ts';
import { type SeedVLConfig, makeConfig } from './config.ts';
import { SeedViT, type FloatDType } from './vision.ts';
import { Adapter } from './adapter.ts';
import { LanguageModel } from './language.ts';
import { KVCache } from './kv_cache.ts';
import {
  type ImageBatch, type ModelInputs, IGNORE_INDEX, toInt32, checkSegments, positionsFor, locateImageTokens,
} from './inputs.ts';

export interface ModelOutput {
  /** [T, vocab] */
  logits: Tensor;
  /** lmLoss + auxLossCoef·auxLoss + zLossCoef·zLoss (when labels were given). */
  loss?: Tensor;
  /** Mean next-token cross-entropy over the positions with a target. */
  lmLoss?: Tensor;
  /** Load-balancing loss, mean over MoE layers (1 = perfectly balanced). */
  auxLoss?: Tensor;
  /** Router z-loss, mean over MoE layers. */
  zLoss?: Tensor;
  /** Positions that had a target. */
  numTargets?: number;
  /** Routing slots per expert, one array per MoE layer. */
  expertCounts: number[][];
}

export interface StepInputs {
  /** The new tokens of every cache row, rows end to end (rows with 0 new tokens contribute none). */
  inputIds: Int32Array | readonly number[];
  /** New tokens per cache row this step. */
  rowLengths: readonly number[];
  /** Images whose placeholders are among the new tokens. */
  images?: ImageBatch;
}

export interface ModelOptions {
  dtype?: FloatDType;
}

export class SeedVLModel extends Module {
  readonly config: SeedVLConfig;
  readonly dtype: FloatDType;
  readonly vision: SeedViT;
  readonly adapter: Adapter;
  readonly language: LanguageModel;

  constructor(config: SeedVLConfig, opts: ModelOptions = {}) {
    super();
    this.config = makeConfig(config);
    this.dtype = opts.dtype ?? 'float32';
    const c = this.config;
    this.vision = this.module('vision', new SeedViT(c.vision, this.dtype));
    this.adapter = this.module('adapter', new Adapter(c.adapter, c.vision.hiddenSize, c.language.hiddenSize, this.dtype));
    this.language = this.module('language', new LanguageModel(c.language, this.dtype));
  }

  /** Patchified images → LLM image tokens [Σ h·w/4, D], image after image. */
  encodeImages(images: ImageBatch): Tensor {
    return this.adapter.forward(this.vision.forward(images.pixelValues, images.grids), images.grids);
  }

  /** Token embeddings [T, D] with the image tokens written over the placeholders. Validates before computing. */
  embed(ids: Int32Array, cuSeqlens: readonly number[], images?: ImageBatch): Tensor {
    const slots = locateImageTokens(this.config, ids, cuSeqlens, images);
    const table = this.language.embedTokens;
    if (!images) return table.forward(int32(ids));                             // [T, D]
    const text = table.forward(int32(toRows(ids, slots.text)));                // text tokens only
    const pictures = this.encodeImages(images);                                // [Σ tokens, D]
    const base = zeros([ids.length, this.config.language.hiddenSize], this.dtype);
    return indexAdd(indexAdd(base, 0, slots.text, text), 0, slots.image, pictures);
  }

  /** Training / full forward over a packed stream of samples. */
  forward(inputs: ModelInputs): ModelOutput {
    const ids = toInt32(inputs.inputIds, 'inputIds');
    const cu = checkSegments(inputs.cuSeqlens, ids.length);
    const labels = inputs.labels ? toInt32(inputs.labels, 'labels') : null;
    if (labels && labels.length !== ids.length) throw new RangeError(`labels has ${labels.length} entries for ${ids.length} tokens`);
    const h = this.embed(ids, cu, inputs.images);                             // [T, D]
    const rope = this.language.ropeTable(positionsFor(cu));                    // positions restart per sample
    const { hidden, moe } = this.language.forward(h, { cos: rope.cos, sin: rope.sin, cuSeqlens: cu });
    const logits = this.language.logits(hidden);                               // [T, V]
    const expertCounts = moe.map((m) => m.counts);
    if (!labels) return { logits, expertCounts };
    const lmLoss = crossEntropy(logits, tensor(labels, [labels.length], 'int32'), { ignoreIndex: IGNORE_INDEX });
    const numTargets = labels.reduce((n, v) => n + (v === IGNORE_INDEX ? 0 : 1), 0);
    const m = this.config.language.moe;
    if (!m || moe.length === 0) return { logits, loss: lmLoss, lmLoss, numTargets, expertCounts };
    const { auxLoss, zLoss } = this.routerLosses(moe);
    const loss = addScaled(addScaled(lmLoss, auxLoss, m.auxLossCoef), zLoss, m.zLossCoef);
    return { logits, loss, lmLoss, auxLoss, zLoss, numTargets, expertCounts };
  }

  /** Mean over MoE layers of the load-balancing and z losses. */
  routerLosses(moe: MoEOutput[]): { auxLoss: Tensor; zLoss: Tensor } {
    const k = this.config.language.moe!.numExpertsPerTok;
    let aux = loadBalancingLoss(moe[0].routing.probs, moe[0].counts, k);
    let z = routerZLoss(moe[0].routing.logits);
    for (const m of moe.slice(1)) {
      aux = add(aux, loadBalancingLoss(m.routing.probs, m.counts, k));
      z = add(z, routerZLoss(m.routing.logits));
    }
    return { auxLoss: mulScalar(aux, 1 / moe.length), zLoss: mulScalar(z, 1 / moe.length) };
  }

  // ------------------------------------------------------------- inference

  /** A KV cache for `batchSize` sequences of up to `maxLength` positions. */
  createCache(batchSize: number, maxLength: number): KVCache {
    const l = this.config.language;
    if (maxLength > l.maxPositionEmbeddings) {
      throw new RangeError(`createCache: maxLength ${maxLength} exceeds max_position_embeddings ${l.maxPositionEmbeddings}`);
    }
    return new KVCache({ numLayers: l.numLayers, batchSize, numKvHeads: l.numKvHeads, headDim: l.headDim, maxLength, dtype: this.dtype });
  }

  /**
   * Runs new tokens through the cache: row b receives rowLengths[b] tokens
   * (a prompt or a prompt chunk, with its images). Returns the logits of each
   * active row's last new token [rows with tokens, V], or of every new token
   * [T, V] with `allLogits`.
   */
  prefill(cache: KVCache, inputs: StepInputs, opts: { allLogits?: boolean } = {}): Tensor {
    const ids = toInt32(inputs.inputIds, 'inputIds');
    const lens = inputs.rowLengths;
    const total = lens.reduce((a, b) => a + b, 0);
    if (total !== ids.length) throw new RangeError(`prefill: rowLengths [${lens}] sum to ${total}, but ${ids.length} token ids were given`);
    const cu = [0];
    for (const n of lens) cu.push(cu[cu.length - 1] + n);
    return noGrad(() => tidy(() => {
      const h = this.embed(ids, cu, inputs.images);                           // validated before the cache changes
      const positions = cache.begin(lens);                                    // continue each row where it stopped
      try {
        const rope = this.language.ropeTable(positions);
        const { hidden } = this.language.forward(h, { cos: rope.cos, sin: rope.sin, cuSeqlens: cu, cache });
        cache.commit();
        if (opts.allLogits) return this.language.logits(hidden);
        const last = lens.flatMap((n, b) => (n > 0 ? [cu[b + 1] - 1] : []));
        return this.language.logits(indexSelect(hidden, 0, last));           // [active rows, V]
      } catch (e) {
        cache.abort();
        throw e;
      }
    }));
  }

  /** One new token per cache row → next-token logits [B, V]. */
  decode(cache: KVCache, tokens: Int32Array | readonly number[]): Tensor {
    if (tokens.length !== cache.batchSize) throw new RangeError(`decode: ${tokens.length} tokens for a cache of ${cache.batchSize} rows`);
    return this.prefill(cache, { inputIds: tokens, rowLengths: new Array<number>(tokens.length).fill(1) });
  }
}

const int32 = (a: Int32Array): Tensor => tensor(a, [a.length], 'int32');

/** Token ids at the given positions. */
function toRows(ids: Int32Array, positions: Int32Array): Int32Array {
  const out = new Int32Array(positions.length);
  for (let i = 0; i < positions.length; i++) out[i] = ids[positions[i]];
  return out;
}
