/**
 * The local engine as a Provider: requests go through the processing layer and
 * the shared batch scheduler; answers come back as OpenAI completions/chunks.
 */
import { ChatError, MediaError, TokenizerError } from '../processing/errors.ts';
import type { Engine, ChatOptions } from '../generation/engine.ts';
import { ModelInputError } from '../generation/model.ts';
import { QueueFullError } from '../generation/scheduler.ts';
import type { GenerationResult } from '../generation/sequence.ts';
import { normalizeStop } from '../generation/stop.ts';
import {
  ProviderError, completionId,
  type CallOptions, type ChatCompletion, type ChatCompletionChunk, type ChatCompletionRequest, type ModelCard, type Provider, type Usage,
} from './types.ts';

export interface LocalProviderOptions {
  /** The id clients use (`model` field); default the engine's model name. */
  modelId?: string;
  /** Media limits applied to every request. */
  media?: ChatOptions['media'];
}

/** Maps runtime errors to HTTP-style provider errors (4xx: the request's fault). */
export function toProviderError(e: unknown): ProviderError {
  if (e instanceof ProviderError) return e;
  if (e instanceof QueueFullError) return new ProviderError(e.message, 429, 'busy');
  if (e instanceof MediaError) return new ProviderError(e.message, 400, e.code, 'messages');
  if (e instanceof ChatError) return new ProviderError(e.message, 400, e.code, 'messages');
  if (e instanceof ModelInputError || e instanceof RangeError || e instanceof TokenizerError) return new ProviderError(e.message, 400, 'invalid_request');
  return new ProviderError(e instanceof Error ? e.message : String(e), 500, 'internal_error');
}

export class LocalProvider implements Provider {
  readonly name = 'local';
  readonly modelId: string;
  private readonly created = Math.floor(Date.now() / 1000);

  constructor(readonly engine: Engine, private readonly o: LocalProviderOptions = {}) {
    this.modelId = o.modelId ?? engine.name;
  }

  async listModels(): Promise<ModelCard[]> {
    return [{ id: this.modelId, object: 'model', created: this.created, owned_by: 'seedvl' }];
  }

  private options(req: ChatCompletionRequest, signal?: AbortSignal): ChatOptions {
    const maxTokens = req.max_completion_tokens ?? req.max_tokens;
    const sampling = {
      ...(req.temperature !== undefined ? { temperature: req.temperature } : {}),
      ...(req.top_p !== undefined ? { topP: req.top_p } : {}),
      ...(req.top_k !== undefined ? { topK: req.top_k } : {}),
      ...(req.seed !== undefined ? { seed: req.seed } : {}),
      ...(req.presence_penalty !== undefined ? { presencePenalty: req.presence_penalty } : {}),
      ...(req.frequency_penalty !== undefined ? { frequencyPenalty: req.frequency_penalty } : {}),
      ...(req.repetition_penalty !== undefined ? { repetitionPenalty: req.repetition_penalty } : {}),
    };
    return {
      sampling,
      ...(maxTokens !== undefined ? { maxTokens } : {}),
      ...(req.stop !== undefined ? { stop: normalizeStop(req.stop) } : {}),
      ...(req.thinking_budget !== undefined ? { thinkingBudget: req.thinking_budget } : {}),
      ...(signal ? { signal } : {}),
      ...(this.o.media ? { media: this.o.media } : {}),
    };
  }

  private usage(r: GenerationResult): Usage {
    return {
      prompt_tokens: r.usage.promptTokens,
      completion_tokens: r.usage.completionTokens,
      total_tokens: r.usage.promptTokens + r.usage.completionTokens,
      completion_tokens_details: { reasoning_tokens: r.usage.reasoningTokens },
    };
  }

  private async start(req: ChatCompletionRequest, signal?: AbortSignal) {
    try {
      return await this.engine.chat({ messages: req.messages, ...(req.thinking ? { thinking: req.thinking } : {}) }, this.options(req, signal));
    } catch (e) {
      throw toProviderError(e);
    }
  }

  async complete(req: ChatCompletionRequest, o: CallOptions = {}): Promise<ChatCompletion> {
    const h = await this.start(req, o.signal);
    let r: GenerationResult;
    try {
      r = await h.result;
    } catch (e) {
      throw toProviderError(e);
    }
    return {
      id: completionId(),
      object: 'chat.completion',
      created: Math.floor(Date.now() / 1000),
      model: this.modelId,
      choices: [{ index: 0, message: { role: 'assistant', content: r.content, reasoning_content: r.reasoning_content }, finish_reason: r.finishReason }],
      usage: this.usage(r),
      seedvl: { seed: r.seed, ttft_ms: r.timings.ttftMs, total_ms: r.timings.totalMs, ...(this.engine.opts.randomWeights ? { random_weights: true } : {}) },
    };
  }

  async *stream(req: ChatCompletionRequest, o: CallOptions = {}): AsyncIterable<ChatCompletionChunk> {
    const h = await this.start(req, o.signal);
    const id = completionId();
    const created = Math.floor(Date.now() / 1000);
    const chunk = (delta: ChatCompletionChunk['choices'][0]['delta'], finish: ChatCompletionChunk['choices'][0]['finish_reason'] = null): ChatCompletionChunk => ({
      id, object: 'chat.completion.chunk', created, model: this.modelId, choices: [{ index: 0, delta, finish_reason: finish }],
    });
    let finished = false;
    try {
      yield chunk({ role: 'assistant', content: '' });
      for await (const e of h.events) {
        if (e.type === 'delta') {
          if (e.reasoning || e.content) yield chunk({ ...(e.reasoning ? { reasoning_content: e.reasoning } : {}), ...(e.content ? { content: e.content } : {}) });
        } else {
          finished = true;
          yield { ...chunk({}, e.finishReason), usage: this.usage(e) };
        }
      }
    } catch (e) {
      throw toProviderError(e);
    } finally {
      if (!finished) h.cancel(); // the consumer stopped reading: stop generating
    }
  }
}
