/**
 * The local chat engine: chat request → model inputs (processing layer) →
 * the batch scheduler → a stream of reasoning/content deltas. One Engine per
 * loaded model; every caller (CLI, server, providers) shares its scheduler, so
 * concurrent requests are decoded together.
 */
import {
  buildModelInputs, SEED_TEMPLATE, SEED_VISION, validateRequest,
  type BuildInputsOptions, type ChatRequest, type ChatTemplate, type ModelInputs, type Tokenizer, type VisionPreprocessConfig,
} from '../processing/index.ts';
import type { GenerationModel } from './model.ts';
import { ModelInputError } from './model.ts';
import { Scheduler, type GenerationHandle, type SchedulerOptions } from './scheduler.ts';
import type { SamplingParams } from './sampling.ts';

export interface EngineOptions extends SchedulerOptions {
  template?: ChatTemplate;
  vision?: VisionPreprocessConfig;
  /** Media loading and preprocessing limits (network, pixels, frames …). */
  media?: Omit<BuildInputsOptions, 'template' | 'vision'>;
  /** max_tokens when a request gives none (default 512). */
  defaultMaxTokens?: number;
  /** Said in every answer's metadata: a random-initialised model talks nonsense. */
  randomWeights?: boolean;
}

export interface ChatOptions {
  sampling?: SamplingParams;
  maxTokens?: number;
  stop?: readonly string[];
  /** Most tokens of reasoning (thinking mode); then `</think>` is forced. */
  thinkingBudget?: number;
  signal?: AbortSignal;
  /** Per-request media limits, on top of the engine's. */
  media?: Omit<BuildInputsOptions, 'template' | 'vision'>;
}

export interface ChatHandle extends GenerationHandle {
  inputs: ModelInputs;
}

export class Engine {
  readonly scheduler: Scheduler;
  readonly template: ChatTemplate;
  readonly vision: VisionPreprocessConfig;
  readonly stopTokenIds: number[];
  private readonly closeThinkIds: number[];

  constructor(readonly model: GenerationModel, readonly tokenizer: Tokenizer, readonly opts: EngineOptions = {}) {
    this.scheduler = new Scheduler(model, tokenizer, opts);
    this.template = opts.template ?? SEED_TEMPLATE;
    this.vision = opts.vision ?? SEED_VISION;
    const sp = this.template.specialTokens;
    this.stopTokenIds = [...new Set([tokenizer.requireId(sp.eos), tokenizer.requireId(sp.turnEnd)])];
    this.closeThinkIds = tokenizer.encode(`${sp.thinkEnd}\n\n`);
  }

  get name(): string {
    return this.model.name;
  }

  /** Builds model inputs for a request (loads and preprocesses media). */
  async prepare(req: ChatRequest, media: ChatOptions['media'] = {}): Promise<ModelInputs> {
    validateRequest(req);
    const hasMedia = req.messages.some((m) => typeof m.content !== 'string' && m.content.some((p) => p.type !== 'text'));
    if (hasMedia && !this.model.acceptsVision) throw new ModelInputError(`model ${this.model.name} takes text only, but the request has images or video`);
    return buildModelInputs(req, this.tokenizer, { ...this.opts.media, ...media, template: this.template, vision: this.vision });
  }

  /** Starts generating an answer; read `events` for deltas or await `result`. */
  async chat(req: ChatRequest, o: ChatOptions = {}): Promise<ChatHandle> {
    if (o.signal?.aborted) throw o.signal.reason ?? new Error('aborted');
    const inputs = await this.prepare(req, o.media);
    const maxTokens = Math.min(o.maxTokens ?? this.opts.defaultMaxTokens ?? 512, this.model.maxSequenceLength - inputs.inputIds.length);
    if (maxTokens < 1) {
      throw new ModelInputError(`the prompt has ${inputs.inputIds.length} tokens, which leaves no room to answer within the model's ${this.model.maxSequenceLength}-token context`);
    }
    const handle = this.scheduler.submit({
      inputs,
      maxTokens,
      stopTokenIds: this.stopTokenIds,
      ...(o.sampling ? { sampling: o.sampling } : {}),
      ...(o.stop ? { stop: o.stop } : {}),
      ...(o.signal ? { signal: o.signal } : {}),
      ...(o.thinkingBudget !== undefined && inputs.thinking === 'enabled' ? { thinking: { budget: o.thinkingBudget, closeIds: this.closeThinkIds } } : {}),
    });
    return { ...handle, inputs };
  }

  dispose(): void {
    this.model.dispose?.();
  }
}
