/**
 * Qwen-VL glue: vision tower → LLM tokens scattered over the `<|image_pad|>` /
 * `<|video_pad|>` placeholders → decoder under M-RoPE (+ deepstack for Qwen3).
 *
 * Rows (sequences) travel packed end to end, as in the Seed model: a full
 * forward (`forward`, no cache: every row attends only to itself) or through a
 * KV cache (`prefill` / `decode`). Media are given per batch, in order of
 * appearance over the packed rows; each placeholder run takes the next grid.
 * A left-padded [B, S] batch is the same thing with the pads dropped.
 */
import { Module } from '../../nn/index.ts';
import { Tensor, tensor, zeros, noGrad, tidy, indexAdd, indexSelect } from '../../tensor/index.ts';
import { mropeTable } from '../../tensor/ops/rope.ts';
import { KVCache } from '../seed_vl/kv_cache.ts';
import type { QwenVLConfig } from './config.ts';
import { QwenVisionTower, type Trace, type VisionOutput } from './vision.ts';
import { QwenTextModel, type Deepstack } from './language.ts';
import { MediaCursor, rowPositions, type PositionConvention } from './rope_index.ts';
import type { Grid3 } from './vision_layout.ts';

/** Patchified images or videos of a batch, in order of appearance. */
export interface VisionBatch {
  /** [Σ t·h·w, 3·T·P·P] float32. */
  pixelValues: Tensor;
  grids: Grid3[];
  /** Videos (Qwen2.5-VL): seconds per temporal patch, one per video. */
  secondPerGrid?: number[];
}

export interface QwenInputs {
  /** The rows' token ids end to end. */
  inputIds: Int32Array | readonly number[];
  /** Tokens per row (0 allowed with a cache). Default: one row. */
  rowLengths?: readonly number[];
  images?: VisionBatch;
  videos?: VisionBatch;
}

export interface ForwardOptions {
  /** Where text resumes after a vision block (rope_index.ts); default the model's. */
  convention?: PositionConvention;
  /** Receives intermediate tensors (names as in the golden files, e.g. 'vision.blocks.0.out', 'text.layers.1.out'). */
  trace?: Trace;
}

/** A KV cache with each row's next M-RoPE position. */
export class QwenCache {
  readonly next: Int32Array;
  constructor(readonly kv: KVCache) {
    this.next = new Int32Array(kv.batchSize);
  }
  get batchSize(): number {
    return this.kv.batchSize;
  }
  rowLength(row: number): number {
    return this.kv.rowLength(row);
  }
  reset(row?: number): void {
    this.kv.reset(row);
    if (row === undefined) this.next.fill(0);
    else this.next[row] = 0;
  }
  dispose(): void {
    this.kv.dispose();
  }
}

export class QwenVLModel extends Module {
  /** Default position convention for inference: the original Qwen rule (how the models were trained). */
  convention: PositionConvention = 'original';

  constructor(readonly config: QwenVLConfig, readonly vision: QwenVisionTower, readonly language: QwenTextModel) {
    super();
    this.module('vision', vision);
    this.module('language', language);
    this.eval();
  }

  private ropeSpec(convention: PositionConvention) {
    const c = this.config;
    return {
      family: c.family, mergeSize: c.vision.mergeSize, tokensPerSecond: c.vision.tokensPerSecond,
      imageTokenId: c.imageTokenId, videoTokenId: c.videoTokenId, convention,
    };
  }

  /** M-RoPE positions [3, T] of packed rows, each row starting at starts[b]; and where each row continues. */
  positions(ids: Int32Array, rowLengths: readonly number[], inputs: Pick<QwenInputs, 'images' | 'videos'>, starts?: ArrayLike<number>, convention = this.convention): { positions: Int32Array; next: number[] } {
    const cursor = new MediaCursor({
      images: inputs.images?.grids ?? [], videos: inputs.videos?.grids ?? [], secondPerGrid: inputs.videos?.secondPerGrid,
    }, this.ropeSpec(convention));
    const T = ids.length;
    const out = new Int32Array(3 * T);
    const next: number[] = [];
    let off = 0;
    rowLengths.forEach((n, b) => {
      const start = starts ? starts[b] : 0;
      const r = rowPositions(ids.subarray(off, off + n), cursor, start);
      for (let a = 0; a < 3; a++) out.set(r.positions.subarray(a * n, (a + 1) * n), a * T + off);
      next.push(n > 0 ? r.next : start);
      off += n;
    });
    cursor.finish();
    return { positions: out, next };
  }

  /** Runs the vision tower on one kind of media. */
  encode(batch: VisionBatch, trace?: Trace): VisionOutput {
    return noGrad(() => this.vision.forward(batch.pixelValues, batch.grids, trace));
  }

  /**
   * Token embeddings [T, d] with the vision tokens written over the placeholders,
   * and the deepstack features to add after the first layers.
   */
  embed(ids: Int32Array, inputs: Pick<QwenInputs, 'images' | 'videos'>, trace?: Trace): { embeds: Tensor; deepstack: Deepstack } {
    const c = this.config;
    const imageRows: number[] = [], videoRows: number[] = [], textRows: number[] = [];
    ids.forEach((id, i) => (id === c.imageTokenId ? imageRows : id === c.videoTokenId ? videoRows : textRows).push(i));
    const check = (rows: number[], batch: VisionBatch | undefined, what: string): void => {
      const want = batch ? batch.grids.reduce((a, g) => a + (g.t * g.h * g.w) / c.vision.mergeSize ** 2, 0) : 0;
      if (rows.length !== want) throw new RangeError(`Qwen-VL: the tokens hold ${rows.length} ${what} placeholders, the ${what}s need ${want}`);
    };
    check(imageRows, inputs.images, 'image');
    check(videoRows, inputs.videos, 'video');
    const deepstack: Deepstack = [];
    const vis: { rows: number[]; out: VisionOutput }[] = [];
    const run = (batch: VisionBatch, rows: number[], name: string): void => {
      const out = this.encode(batch, trace && ((n, t) => trace(`${name}.${n}`, t)));
      vis.push({ rows, out });
      trace?.(`${name}.out`, out.embeds);
      out.deepstack.forEach((d, k) => trace?.(`${name}.deepstack.${k}`, d));
    };
    try {
      if (inputs.images) run(inputs.images, imageRows, 'vision');
      if (inputs.videos) run(inputs.videos, videoRows, 'vision_video');
      const embeds = noGrad(() => tidy(() => {
        const text = this.language.embed(Int32Array.from(textRows.map((i) => ids[i])));
        let e = indexAdd(zeros([ids.length, c.text.hiddenSize]), 0, textRows, text);
        for (const v of vis) e = indexAdd(e, 0, v.rows, v.out.embeds);
        return e;
      }));
      for (const v of vis) {
        v.out.embeds.dispose();
        if (v.out.deepstack.length) deepstack.push({ rows: Int32Array.from(v.rows), features: v.out.deepstack });
      }
      return { embeds, deepstack };
    } catch (e) {
      for (const v of vis) {
        v.out.embeds.dispose();
        for (const d of v.out.deepstack) d.dispose();
      }
      throw e;
    }
  }

  /** M-RoPE cos/sin tables [T, headDim/2] for positions [3, T]. */
  ropeTable(positions: Int32Array): { cos: Tensor; sin: Tensor } {
    const t = this.config.text;
    const T = positions.length / 3;
    return tidy(() => mropeTable(tensor(positions, [3, T], 'int32'), {
      headDim: t.headDim, theta: t.ropeTheta, section: t.mropeSection, interleaved: t.mropeInterleaved,
    }));
  }

  /**
   * Full forward over packed rows without a cache: final-norm hidden states [T, d]
   * (logits via `language.logits`). Used for golden comparisons and scoring.
   */
  forward(inputs: QwenInputs, opts: ForwardOptions = {}): { hidden: Tensor; positions: Int32Array; next: number[] } {
    const ids = Int32Array.from(inputs.inputIds);
    const rowLengths = inputs.rowLengths ?? [ids.length];
    if (rowLengths.reduce((a, b) => a + b, 0) !== ids.length) throw new RangeError(`Qwen-VL: rowLengths [${rowLengths}] do not sum to the ${ids.length} tokens`);
    const { positions, next } = this.positions(ids, rowLengths, inputs, undefined, opts.convention ?? this.convention);
    const trace = opts.trace;
    const { embeds, deepstack } = this.embed(ids, inputs, trace);
    return noGrad(() => {
      const rope = this.ropeTable(positions);
      try {
        trace?.('text.inputs_embeds', embeds);
        trace?.('text.rotary_cos', rope.cos);
        const cu = [0];
        for (const n of rowLengths) cu.push(cu[cu.length - 1] + n);
        const hidden = this.language.forward(embeds, { cos: rope.cos, sin: rope.sin, cuSeqlens: cu }, deepstack, trace && ((n, t) => trace(`text.${n}`, t)));
        trace?.('text.final_norm_out', hidden);
        return { hidden, positions, next };
      } finally {
        embeds.dispose();
        rope.cos.dispose();
        rope.sin.dispose();
        for (const d of deepstack) for (const f of d.features) f.dispose();
      }
    });
  }

  // ------------------------------------------------------------- inference

  createCache(batchSize: number, maxLength: number): QwenCache {
    const t = this.config.text;
    return new QwenCache(new KVCache({ numLayers: t.numLayers, batchSize, numKvHeads: t.numKvHeads, headDim: t.headDim, maxLength }));
  }

  /**
   * Appends new tokens to cache rows (rowLengths[b] per row, 0 = idle) and
   * returns the logits of each active row's last new token [active rows, V],
   * or of every new token with `allLogits`.
   */
  prefill(cache: QwenCache, inputs: QwenInputs, opts: { allLogits?: boolean; convention?: PositionConvention } = {}): Tensor {
    const ids = Int32Array.from(inputs.inputIds);
    const lens = inputs.rowLengths ?? [ids.length];
    if (lens.length !== cache.batchSize) throw new RangeError(`prefill: ${lens.length} row lengths for a cache of ${cache.batchSize} rows`);
    const total = lens.reduce((a, b) => a + b, 0);
    if (total !== ids.length) throw new RangeError(`prefill: rowLengths [${lens}] sum to ${total}, but ${ids.length} token ids were given`);
    // Every check (placeholders, grids, room in the cache) before the cache changes.
    const { positions, next } = this.positions(ids, lens, inputs, cache.next, opts.convention ?? this.convention);
    const { embeds, deepstack } = this.embed(ids, inputs);
    return noGrad(() => tidy(() => {
      const cu = [0];
      for (const n of lens) cu.push(cu[cu.length - 1] + n);
      const rope = this.ropeTable(positions);
      cache.kv.begin(lens);
      try {
        const hidden = this.language.forward(embeds, { cos: rope.cos, sin: rope.sin, cuSeqlens: cu, cache: cache.kv }, deepstack);
        cache.kv.commit();
        next.forEach((p, b) => (cache.next[b] = p));
        if (opts.allLogits) return this.language.logits(hidden);
        const last = lens.flatMap((n, b) => (n > 0 ? [cu[b + 1] - 1] : []));
        return this.language.logits(indexSelect(hidden, 0, last));
      } catch (e) {
        cache.kv.abort();
        throw e;
      } finally {
        embeds.dispose();
        for (const d of deepstack) for (const f of d.features) f.dispose();
      }
    }));
  }

  /** One new token per cache row → next-token logits [B, V]. */
  decode(cache: QwenCache, tokens: Int32Array | readonly number[]): Tensor {
    if (tokens.length !== cache.batchSize) throw new RangeError(`decode: ${tokens.length} tokens for a cache of ${cache.batchSize} rows`);
    return this.prefill(cache, { inputIds: tokens, rowLengths: new Array<number>(tokens.length).fill(1) });
  }
}
