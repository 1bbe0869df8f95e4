/**
 * A tiny deterministic language model built from real engine ops, for testing
 * the runtime without the full Seed1.5-VL model: embedding → one attention
 * layer over a real KV cache (k, v = linear projections; attentionDecode
 * against the cache) → linear head. Weights come from a fixed seed, so its
 * (meaningless) outputs are reproducible; optional `bias` rows steer it towards
 * a scripted continuation so tests can check stop handling on known text.
 */
import { Tensor, tensor, noGrad, tidy, keep, zeros, copyInto, narrow, reshape, cat, randn, embedding } from '../../src/tensor/index.ts';
import { attention, attentionDecode } from '../../src/tensor/ops/attention.ts';
import { add, mulScalar } from '../../src/tensor/ops/elementwise.ts';
import { linear } from '../../src/tensor/ops/matmul.ts';
import { ModelInputError, type GenerationModel, type PrefillInputs, type SequenceCache } from '../../src/generation/model.ts';

class TinyCache implements SequenceCache {
  readonly k: Tensor;
  readonly v: Tensor;
  length = 0;
  promptLength = 0;
  disposed = false;
  constructor(readonly capacity: number, d: number) {
    this.k = keep(zeros([1, 1, capacity, d]));
    this.v = keep(zeros([1, 1, capacity, d]));
  }
  /** Writes rows [n, d] at the end of the cache. */
  append(k: Tensor, v: Tensor): void {
    const n = k.shape[0]!;
    if (this.length + n > this.capacity) throw new RangeError(`TinyCache: ${this.length + n} tokens exceed capacity ${this.capacity}`);
    copyInto(k, reshape(narrow(this.k, 2, this.length, n), [n, k.shape[1]!]));
    copyInto(v, reshape(narrow(this.v, 2, this.length, n), [n, v.shape[1]!]));
    this.length += n;
  }
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.k.dispose();
    this.v.dispose();
  }
}

/** Weights as plain tensors (seeded normal init), run with the engine's embedding / linear / attention ops. */
class TinyNet {
  readonly table: Tensor;
  readonly wqkv: Tensor[];
  readonly whead: Tensor;
  constructor(V: number, readonly d: number, seed: number) {
    const init = (shape: number[], s: number, scale: number): Tensor => keep(tidy(() => mulScalar(randn(shape, { seed: s }), scale)));
    this.table = init([V, d], seed, 1);
    this.wqkv = [1, 2, 3].map((i) => init([d, d], seed + i, 1 / Math.sqrt(d)));
    this.whead = init([V, d], seed + 4, 1 / Math.sqrt(d));
  }
  embed(ids: Tensor): Tensor {
    return embedding(this.table, ids);
  }
  qkv(h: Tensor): Tensor[] {
    return this.wqkv.map((w) => linear(h, w));
  }
  head(h: Tensor): Tensor {
    return linear(h, this.whead);
  }
}

export interface TinyLMOptions {
  vocabSize: number;
  dim?: number;
  seed?: number;
  maxSequenceLength?: number;
  /** Added to the logits of `next` whenever the last token is `prev` (a scripted bigram). */
  script?: [prev: number, next: number][];
  /** Scripted answer: step i of every sequence gets +50 on answer[i] (real logits underneath). */
  answer?: number[];
  /** Take image inputs and ignore them (a text model behind a vision front end), instead of refusing them. */
  ignoreVision?: boolean;
  /** Counts calls, for tests. */
  onDecode?: (batch: number) => void;
}

export class TinyLM implements GenerationModel {
  readonly name = 'tiny-test-lm';
  readonly vocabSize: number;
  readonly maxSequenceLength: number;
  readonly acceptsVision: boolean;
  private readonly net: TinyNet;
  private readonly scriptBias = new Map<number, Float32Array>();
  readonly liveCaches = new Set<TinyCache>();

  constructor(private readonly o: TinyLMOptions) {
    this.vocabSize = o.vocabSize;
    this.acceptsVision = o.ignoreVision ?? false;
    this.maxSequenceLength = o.maxSequenceLength ?? 512;
    this.net = new TinyNet(o.vocabSize, o.dim ?? 32, o.seed ?? 1);
    for (const [prev, next] of o.script ?? []) {
      const b = this.scriptBias.get(prev) ?? new Float32Array(o.vocabSize);
      b[next] = 50;
      this.scriptBias.set(prev, b);
    }
  }

  createCache(capacity: number): SequenceCache {
    const c = new TinyCache(capacity, this.net.d);
    this.liveCaches.add(c);
    const dispose = c.dispose.bind(c);
    c.dispose = () => {
      this.liveCaches.delete(c);
      dispose();
    };
    return c;
  }

  private logitsFor(h: Tensor, a: Tensor, lastTokens: ArrayLike<number>, caches: readonly TinyCache[]): Tensor {
    const logits = this.net.head(add(h, a));                           // [B, V]
    const rows = Array.from(lastTokens, (t, b) => {
      const step = caches[b]!.length - caches[b]!.promptLength;
      const forced = this.o.answer?.[step];
      if (forced === undefined) return this.scriptBias.get(t);
      const r = Float32Array.from(this.scriptBias.get(t) ?? new Float32Array(this.vocabSize));
      r[forced] = (r[forced] ?? 0) + 50;
      return r;
    });
    if (rows.every((r) => !r)) return logits;
    const B = lastTokens.length;
    const bias = new Float32Array(B * this.vocabSize);
    rows.forEach((r, b) => r && bias.set(r, b * this.vocabSize));
    return add(logits, tensor(bias, [B, this.vocabSize]));
  }

  prefill(inputs: PrefillInputs, cache: SequenceCache): Tensor {
    if (inputs.vision?.length && !this.acceptsVision) throw new ModelInputError('tiny-test-lm takes no images');
    const c = cache as TinyCache;
    const ids = inputs.inputIds;
    const T = ids.length;
    return noGrad(() => tidy(() => {
      const h = this.net.embed(tensor(ids, [T], 'int32'));             // [T, d]
      const [q, k, v] = this.net.qkv(h);
      c.append(k, v);
      c.promptLength = T;
      const a = attention(reshape(q, [T, 1, this.net.d]), reshape(k, [T, 1, this.net.d]), reshape(v, [T, 1, this.net.d]), { causal: true });
      const last = (x: Tensor): Tensor => reshape(narrow(x, 0, T - 1, 1), [1, this.net.d]);
      return reshape(this.logitsFor(last(h), last(reshape(a, [T, this.net.d])), [ids[T - 1]!], [c]), [this.vocabSize]);
    }));
  }

  decode(tokens: Int32Array, caches: readonly SequenceCache[]): Tensor {
    this.o.onDecode?.(tokens.length);
    const B = tokens.length;
    return noGrad(() => tidy(() => {
      const h = this.net.embed(tensor(tokens, [B], 'int32'));          // [B, d], one batched pass
      const [q, k, v] = this.net.qkv(h);
      const outs = caches.map((cache, b) => {
        const c = cache as TinyCache;
        c.append(narrow(k, 0, b, 1), narrow(v, 0, b, 1));
        return attentionDecode(reshape(narrow(q, 0, b, 1), [1, 1, this.net.d]), c.k, c.v, [c.length]); // [1, 1, d]
      });
      const a = reshape(cat(outs, 0), [B, this.net.d]);
      return this.logitsFor(h, a, tokens, caches as TinyCache[]);
    }));
  }
}

