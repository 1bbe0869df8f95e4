/**
 * The one interface every user of a model talks to (CLI, server, agents,
 * eval): OpenAI chat-completion shapes plus the hosted Seed1.5-VL extensions
 * — the `thinking` switch on requests and `reasoning_content` next to
 * `content` in answers and stream deltas (spec §7).
 */
import type { ChatMessage, ThinkingMode } from '../processing/chat.ts';

export interface ChatCompletionRequest {
  model?: string;
  messages: ChatMessage[];
  thinking?: { type: ThinkingMode };
  max_tokens?: number;
  /** Newer OpenAI spelling of max_tokens. */
  max_completion_tokens?: number;
  temperature?: number;
  top_p?: number;
  top_k?: number;
  stop?: string | string[];
  seed?: number;
  presence_penalty?: number;
  frequency_penalty?: number;
  repetition_penalty?: number;
  /** Most reasoning tokens in thinking mode (seedvl extension). */
  thinking_budget?: number;
}

export type FinishReason = 'stop' | 'length' | 'cancelled';

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  completion_tokens_details?: { reasoning_tokens: number };
}

export interface ChatCompletion {
  id: string;
  object: 'chat.completion';
  created: number;
  model: string;
  choices: {
    index: number;
    message: { role: 'assistant'; content: string; reasoning_content?: string };
    finish_reason: FinishReason;
  }[];
  usage: Usage;
  /** seedvl extension: timings (ms) and the seed used. */
  seedvl?: { seed: number; ttft_ms: number; total_ms: number; random_weights?: boolean };
}

export interface ChatCompletionChunk {
  id: string;
  object: 'chat.completion.chunk';
  created: number;
  model: string;
  choices: {
    index: number;
    delta: { role?: 'assistant'; content?: string; reasoning_content?: string };
    finish_reason: FinishReason | null;
  }[];
  usage?: Usage;
}

export interface ModelCard {
  id: string;
  object: 'model';
  created: number;
  owned_by: string;
}

export interface CallOptions {
  signal?: AbortSignal;
}

export interface Provider {
  readonly name: string;
  listModels(o?: CallOptions): Promise<ModelCard[]>;
  complete(req: ChatCompletionRequest, o?: CallOptions): Promise<ChatCompletion>;
  /** Deltas; the last chunk carries finish_reason (and usage). */
  stream(req: ChatCompletionRequest, o?: CallOptions): AsyncIterable<ChatCompletionChunk>;
}

/** A provider-side failure with the HTTP status it maps to (400 bad request, 429 busy, 5xx). */
export class ProviderError extends Error {
  constructor(message: string, readonly status: number, readonly code = 'provider_error', readonly param?: string) {
    super(message);
    this.name = 'ProviderError';
  }
}

export function completionId(): string {
  return `chatcmpl-${Date.now().toString(36)}${Math.random().toString(36).slice(2, 10)}`;
}

/** Joins a chunk stream into a completion (what a non-streaming call returns). */
export async function collectStream(chunks: AsyncIterable<ChatCompletionChunk>): Promise<ChatCompletion> {
  let content = '';
  let reasoning = '';
  let last: ChatCompletionChunk | null = null;
  let finish: FinishReason = 'stop';
  let usage: Usage | undefined;
  for await (const c of chunks) {
    last = c;
    for (const ch of c.choices) {
      content += ch.delta.content ?? '';
      reasoning += ch.delta.reasoning_content ?? '';
      if (ch.finish_reason) finish = ch.finish_reason;
    }
    if (c.usage) usage = c.usage;
  }
  return {
    id: last?.id ?? completionId(),
    object: 'chat.completion',
    created: last?.created ?? Math.floor(Date.now() / 1000),
    model: last?.model ?? '',
    choices: [{ index: 0, message: { role: 'assistant', content, ...(reasoning ? { reasoning_content: reasoning } : {}) }, finish_reason: finish }],
    usage: usage ?? { prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 },
  };
}
