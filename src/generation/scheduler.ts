/**
 * Continuous batching. Requests wait in a queue; between model steps the
 * scheduler admits waiting requests (one prefill per step while others are
 * decoding, so a long prompt does not stall the running batch for several
 * prefills in a row), then runs one batched decode step over every running
 * sequence. Finished and cancelled sequences leave the batch at once and free
 * their cache. Each step is synchronous native compute; between steps the
 * loop yields to the event loop so HTTP I/O, new requests and cancellations
 * are handled.
 */
import { tidy } from '../tensor/index.ts';
import type { TokenDecoder } from './detokenizer.ts';
import type { GenerationModel } from './model.ts';
import { Sequence, type GenerateRequest, type GenerationEvent, type GenerationResult } from './sequence.ts';

export interface SchedulerOptions {
  /** Most sequences decoded together (default 8). */
  maxBatch?: number;
  /** Most requests waiting for a slot; more are refused with QueueFullError (default 64). */
  maxQueue?: number;
  /**
   * Prompt tokens admitted per step (default 2048; one request is always
   * admitted even if longer): bounds how long running sequences wait for a step.
   */
  maxPrefillTokens?: number;
}

export class QueueFullError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'QueueFullError';
  }
}

export interface GenerationHandle {
  readonly id: number;
  /** Deltas, then one 'done' event; rejects if the request failed. */
  readonly events: AsyncIterable<GenerationEvent>;
  /** The whole result (also available when only events are read). */
  readonly result: Promise<GenerationResult>;
  /** Stops generation; the stream ends with finishReason 'cancelled'. */
  cancel(): void;
}

export interface SchedulerStats {
  running: number;
  waiting: number;
  steps: number;
  /** Sequences decoded per step, summed (÷ steps = mean batch). */
  decodedRows: number;
}

const yieldToEventLoop = (): Promise<void> => new Promise((r) => setImmediate(r));

export class Scheduler {
  private readonly waiting: Sequence[] = [];
  private readonly running: Sequence[] = [];
  private loopActive = false;
  private readonly maxBatch: number;
  private readonly maxQueue: number;
  private readonly maxPrefillTokens: number;
  readonly stats: SchedulerStats = { running: 0, waiting: 0, steps: 0, decodedRows: 0 };

  constructor(readonly model: GenerationModel, private readonly decoder: TokenDecoder, opts: SchedulerOptions = {}) {
    this.maxBatch = opts.maxBatch ?? 8;
    this.maxQueue = opts.maxQueue ?? 64;
    this.maxPrefillTokens = opts.maxPrefillTokens ?? 2048;
    if (!Number.isInteger(this.maxBatch) || this.maxBatch < 1) throw new RangeError(`scheduler: maxBatch must be a positive integer, got ${this.maxBatch}`);
  }

  get load(): { running: number; waiting: number } {
    return { running: this.running.length, waiting: this.waiting.length };
  }

  submit(req: GenerateRequest): GenerationHandle {
    if (this.waiting.length >= this.maxQueue) throw new QueueFullError(`generation queue is full (${this.maxQueue} waiting)`);
    const n = req.inputs.inputIds.length;
    if (n === 0) throw new RangeError('generate: the prompt has no tokens');
    if (n >= this.model.maxSequenceLength) {
      throw new RangeError(`generate: the prompt has ${n} tokens; the model takes at most ${this.model.maxSequenceLength - 1} before generating`);
    }
    const seq = new Sequence(req, this.decoder);
    const cancel = (): void => this.cancel(seq);
    if (req.signal) {
      if (req.signal.aborted) queueMicrotask(cancel);
      else req.signal.addEventListener('abort', cancel, { once: true });
      seq.result.finally(() => req.signal!.removeEventListener('abort', cancel)).catch(() => undefined);
    }
    this.waiting.push(seq);
    this.kick();
    return { id: seq.id, events: seq.events, result: seq.result, cancel };
  }

  /** Convenience: run to completion. */
  async generate(req: GenerateRequest): Promise<GenerationResult> {
    return this.submit(req).result;
  }

  private cancel(seq: Sequence): void {
    if (seq.finished) return;
    seq.cancelled = true;
    const w = this.waiting.indexOf(seq);
    if (w >= 0) {
      this.waiting.splice(w, 1);
      seq.finish('cancelled');
    }
    // A running sequence is removed at the next step boundary (never mid-step).
    this.kick();
  }

  private kick(): void {
    if (this.loopActive) return;
    this.loopActive = true;
    setImmediate(() => void this.loop());
  }

  private async loop(): Promise<void> {
    try {
      while (this.running.length > 0 || this.waiting.length > 0) {
        this.reap();
        this.step();
        this.reap();
        this.stats.running = this.running.length;
        this.stats.waiting = this.waiting.length;
        await yieldToEventLoop();
      }
    } finally {
      this.loopActive = false;
      if (this.running.length > 0 || this.waiting.length > 0) this.kick();
    }
  }

  /** Removes finished and cancelled sequences from the batch. */
  private reap(): void {
    for (let i = this.running.length - 1; i >= 0; i--) {
      const s = this.running[i]!;
      if (s.cancelled && !s.finished) s.finish('cancelled');
      if (s.finished) this.running.splice(i, 1);
    }
  }

  /**
   * One step: newly admitted prompts and one token of every running sequence.
   * With `model.extend` they all go through the model in one call (the weights
   * are read once); if that call fails, the items are retried separately so
   * only the faulty request fails.
   */
  private step(): void {
    const decoding = this.running.filter((s) => !s.finished && !s.cancelled);
    const admitted = this.admit(this.model.extend ? this.maxBatch : decoding.length > 0 ? 1 : this.maxBatch);
    if (decoding.length + admitted.length === 0) return;
    // If the combined call fails, fall through and run the items one by one to find the faulty request.
    if (this.model.extend && decoding.length + admitted.length > 1 && this.extendAll(decoding, admitted)) return;
    for (const seq of admitted) {
      try {
        tidy(() => {
          const logits = this.model.prefill(seq.req.inputs, seq.cache!);
          seq.markPrefilled();
          seq.step(logits.data<Float32Array>());
        });
      } catch (e) {
        seq.fail(e);
      }
    }
    if (decoding.length > 0) this.decodeStep(decoding);
  }

  /** Takes waiting requests into the batch (caches allocated, prompts not yet run). */
  private admit(maxNew: number): Sequence[] {
    const out: Sequence[] = [];
    let tokens = 0;
    while (out.length < maxNew && this.running.length < this.maxBatch && this.waiting.length > 0) {
      const next = this.waiting[0]!;
      if (out.length > 0 && tokens + next.promptTokens > this.maxPrefillTokens) break;
      this.waiting.shift();
      tokens += next.promptTokens;
      next.markStarted();
      try {
        const capacity = Math.min(this.model.maxSequenceLength, next.promptTokens + next.maxTokens);
        next.cache = this.model.createCache(capacity);
      } catch (e) {
        next.fail(e);
        continue;
      }
      this.running.push(next);
      out.push(next);
    }
    return out;
  }

  /** The combined call; false (caches unchanged) when the model threw. */
  private extendAll(decoding: Sequence[], admitted: Sequence[]): boolean {
    const items = [
      ...decoding.map((s) => ({ cache: s.cache!, inputs: { inputIds: Int32Array.of(s.pendingToken) } })),
      ...admitted.map((s) => ({ cache: s.cache!, inputs: s.req.inputs })),
    ];
    const ok = tidy(() => {
      let logits;
      try {
        logits = this.model.extend!(items);
      } catch {
        return false;
      }
      const V = logits.shape[1]!;
      const all = logits.data<Float32Array>();
      decoding.forEach((s, b) => s.step(all.subarray(b * V, (b + 1) * V)));
      admitted.forEach((s, i) => {
        const b = decoding.length + i;
        s.markPrefilled();
        s.step(all.subarray(b * V, (b + 1) * V));
      });
      return true;
    });
    if (ok && decoding.length > 0) {
      this.stats.steps++;
      this.stats.decodedRows += decoding.length;
    }
    return ok;
  }

  private decodeStep(batch: Sequence[]): void {
    const tokens = Int32Array.from(batch, (s) => s.pendingToken);
    try {
      tidy(() => {
        const logits = this.model.decode(tokens, batch.map((s) => s.cache!));
        const V = logits.shape[1]!;
        const all = logits.data<Float32Array>();
        batch.forEach((s, b) => s.step(all.subarray(b * V, (b + 1) * V)));
      });
    } catch (e) {
      // A failed step leaves the caches in an unknown state: fail the whole batch.
      for (const s of batch) s.fail(e);
    }
    this.stats.steps++;
    this.stats.decodedRows += batch.length;
  }
}
