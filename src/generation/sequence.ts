/**
 * One request's generation state: sampler, detokenizer, stop matcher,
 * thinking splitter, and the rules that decide, token by token, what is
 * emitted and when the sequence ends. Model calls live in the scheduler;
 * everything here is per-sequence bookkeeping.
 */
import { Channel } from './channel.ts';
import { IncrementalDetokenizer, type TokenDecoder } from './detokenizer.ts';
import type { PrefillInputs, SequenceCache } from './model.ts';
import { SamplerState, sampleToken, resolveSampling, type SamplingParams } from './sampling.ts';
import { randomSeed } from './rng.ts';
import { StopStringMatcher } from './stop.ts';
import { ThinkingSplitter } from './thinking.ts';

export type FinishReason = 'stop' | 'length' | 'cancelled';

export interface ThinkingOptions {
  /** Most tokens spent inside `<think>`; then `closeIds` are forced. Unset: no limit. */
  budget?: number;
  /** Tokens that close the reasoning (e.g. the ids of "\n</think>\n\n"). */
  closeIds?: readonly number[];
  /** The prompt already opened a `<think>` block. */
  startInReasoning?: boolean;
}

export interface GenerateRequest {
  inputs: PrefillInputs;
  sampling?: SamplingParams;
  /** Most tokens to generate (default 256). */
  maxTokens?: number;
  /** Token ids that end generation (not part of the output): EOS, end of turn. */
  stopTokenIds?: readonly number[];
  /** Strings that end generation (not part of the output). */
  stop?: readonly string[];
  thinking?: ThinkingOptions;
  signal?: AbortSignal;
}

export interface GenerationDelta {
  type: 'delta';
  tokenIds: number[];
  /** Raw text (with think tags) that became final. */
  text: string;
  reasoning: string;
  content: string;
}

export interface GenerationUsage {
  promptTokens: number;
  completionTokens: number;
  reasoningTokens: number;
}

export interface GenerationTimings {
  queueMs: number;
  prefillMs: number;
  /** Submit → first token. */
  ttftMs: number;
  totalMs: number;
}

export interface GenerationResult {
  text: string;
  reasoning_content: string;
  content: string;
  tokenIds: number[];
  finishReason: FinishReason;
  usage: GenerationUsage;
  timings: GenerationTimings;
  seed: number;
}

export type GenerationEvent = GenerationDelta | ({ type: 'done' } & GenerationResult);

let nextSeqId = 1;

export class Sequence {
  readonly id = nextSeqId++;
  readonly events = new Channel<GenerationEvent>();
  readonly sampler: SamplerState;
  readonly maxTokens: number;
  cache: SequenceCache | null = null;
  /** Next token to feed to the model (set after each accepted token). */
  pendingToken = -1;
  finished = false;
  cancelled = false;
  readonly generated: number[] = [];

  private readonly detok: IncrementalDetokenizer;
  private readonly stopper: StopStringMatcher;
  private readonly splitter: ThinkingSplitter;
  private readonly stopIds: Set<number>;
  private readonly forced: number[] = [];
  private closing = false;
  private reasoningTokens = 0;
  private text = '';
  private reasoning = '';
  private content = '';
  private readonly t0 = performance.now();
  private tStart = 0;
  private tPrefilled = 0;
  private tFirst = 0;
  private resolveResult!: (r: GenerationResult) => void;
  private rejectResult!: (e: unknown) => void;
  readonly result: Promise<GenerationResult>;

  constructor(readonly req: GenerateRequest, decoder: TokenDecoder) {
    const maxTokens = req.maxTokens ?? 256;
    if (!Number.isInteger(maxTokens) || maxTokens < 1) throw new RangeError(`generate: maxTokens must be a positive integer, got ${maxTokens}`);
    this.maxTokens = maxTokens;
    const budget = req.thinking?.budget;
    if (budget !== undefined && (!Number.isInteger(budget) || budget < 0)) throw new RangeError(`generate: thinking budget must be a non-negative integer, got ${budget}`);
    if (budget !== undefined && !req.thinking?.closeIds?.length) throw new RangeError('generate: a thinking budget needs closeIds (the tokens that close <think>)');
    this.sampler = new SamplerState(resolveSampling(req.sampling ?? {}, randomSeed()), req.inputs.inputIds);
    this.detok = new IncrementalDetokenizer(decoder);
    this.stopper = new StopStringMatcher(req.stop ?? []);
    this.splitter = new ThinkingSplitter(req.thinking?.startInReasoning ?? false);
    this.stopIds = new Set(req.stopTokenIds ?? []);
    this.result = new Promise((res, rej) => {
      this.resolveResult = res;
      this.rejectResult = rej;
    });
    this.result.catch(() => undefined); // consumers may read only the event stream
  }

  get promptTokens(): number {
    return this.req.inputs.inputIds.length;
  }

  markStarted(): void {
    this.tStart = performance.now();
  }

  markPrefilled(): void {
    this.tPrefilled = performance.now();
  }

  /** Chooses the next token from this sequence's logits row (consumed in place) and accepts it. */
  step(logits: Float32Array): void {
    if (this.forced.length > 0) this.accept(this.forced.shift()!, true);
    else this.accept(sampleToken(logits, this.sampler), false);
  }

  private accept(tok: number, forced: boolean): void {
    if (this.tFirst === 0) this.tFirst = performance.now();
    if (!forced && this.stopIds.has(tok)) return this.finish('stop');
    this.generated.push(tok);
    this.sampler.observe(tok);
    const piece = this.detok.push(tok);
    const r = this.stopper.push(piece);
    this.emit([tok], r.text);
    if (r.stopped) return this.finish('stop', true);
    if (this.splitter.section === 'reasoning') {
      this.reasoningTokens++;
      const budget = this.req.thinking?.budget;
      if (budget !== undefined && !this.closing && this.reasoningTokens >= budget) {
        this.closing = true;
        this.forced.push(...this.req.thinking!.closeIds!);
      }
    }
    if (this.generated.length >= this.maxTokens) return this.finish('length');
    if (this.cache && this.cache.length + 1 > this.cache.capacity) return this.finish('length');
    this.pendingToken = tok;
  }

  private emit(tokenIds: number[], text: string): void {
    const d = text ? this.splitter.push(text) : { reasoning: '', content: '' };
    this.text += text;
    this.reasoning += d.reasoning;
    this.content += d.content;
    if (tokenIds.length || text) this.events.push({ type: 'delta', tokenIds, text, reasoning: d.reasoning, content: d.content });
  }

  /** Ends the sequence: flushes held-back text, frees the cache, resolves the result. */
  finish(reason: FinishReason, stoppedByString = false): void {
    if (this.finished) return;
    this.finished = true;
    if (!stoppedByString) {
      const rest = this.stopper.push(this.detok.flush());
      const tail = rest.stopped ? rest.text : rest.text + this.stopper.flush();
      if (tail) this.emit([], tail);
    }
    const end = this.splitter.finish();
    if (end.reasoning || end.content) {
      this.reasoning += end.reasoning;
      this.content += end.content;
      this.events.push({ type: 'delta', tokenIds: [], text: '', reasoning: end.reasoning, content: end.content });
    }
    this.releaseCache();
    const now = performance.now();
    const result: GenerationResult = {
      text: this.text,
      reasoning_content: this.reasoning,
      content: this.content,
      tokenIds: [...this.generated],
      finishReason: reason,
      usage: { promptTokens: this.promptTokens, completionTokens: this.generated.length, reasoningTokens: this.reasoningTokens },
      timings: {
        queueMs: (this.tStart || now) - this.t0,
        prefillMs: this.tPrefilled ? this.tPrefilled - this.tStart : 0,
        ttftMs: this.tFirst ? this.tFirst - this.t0 : 0,
        totalMs: now - this.t0,
      },
      seed: this.sampler.params.seed,
    };
    this.events.push({ type: 'done', ...result });
    this.events.close();
    this.resolveResult(result);
  }

  /** Ends the sequence with an error (its own prefill failed, or the model failed). */
  fail(e: unknown): void {
    if (this.finished) return;
    this.finished = true;
    this.releaseCache();
    this.events.fail(e);
    this.rejectResult(e);
  }

  releaseCache(): void {
    this.cache?.dispose();
    this.cache = null;
  }
}
