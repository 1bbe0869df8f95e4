/**
 * Validation of `POST /v1/chat/completions` bodies (zod). Unknown fields are
 * allowed (OpenAI clients send extras such as `user` or `logprobs: false`),
 * but every known field is checked for type and range, and the first problem
 * is reported with its dotted path, e.g. `messages.0.content.1.image_url.url`.
 */
import { z } from 'zod';
import type { ChatCompletionRequest } from '../providers/types.ts';

const detail = z.enum(['auto', 'low', 'high']);
const TextPart = z.looseObject({ type: z.literal('text'), text: z.string() });
const ImagePart = z.looseObject({
  type: z.literal('image_url'),
  image_url: z.union([z.string().min(1), z.looseObject({ url: z.string().min(1), detail: detail.optional() })]),
});
const VideoPart = z.looseObject({
  type: z.literal('video_url'),
  video_url: z.union([
    z.string().min(1),
    z.looseObject({
      url: z.string().min(1),
      fps: z.number().positive().max(30).optional(),
      task: z.enum(['general', 'fine_grained', 'counting', 'motion']).optional(),
    }),
  ]),
});
const Part = z.discriminatedUnion('type', [TextPart, ImagePart, VideoPart]);

const Message = z.looseObject({
  role: z.enum(['system', 'user', 'assistant']),
  content: z.union([z.string(), z.array(Part)]),
  reasoning_content: z.string().nullish(),
  name: z.string().optional(),
});

const opt = <T extends z.ZodType>(t: T) => t.nullish();

export const ChatCompletionSchema = z.looseObject({
  model: opt(z.string()),
  messages: z.array(Message).min(1, 'must contain at least one message'),
  stream: opt(z.boolean()),
  stream_options: opt(z.looseObject({ include_usage: opt(z.boolean()) })),
  max_tokens: opt(z.number().int().min(1)),
  max_completion_tokens: opt(z.number().int().min(1)),
  temperature: opt(z.number().min(0).max(2)),
  top_p: opt(z.number().gt(0).max(1)),
  top_k: opt(z.number().int().min(0)),
  stop: opt(z.union([z.string().min(1), z.array(z.string().min(1)).max(16)])),
  seed: opt(z.number().int().min(-(2 ** 53) + 1).max(2 ** 53 - 1)),
  presence_penalty: opt(z.number().min(-2).max(2)),
  frequency_penalty: opt(z.number().min(-2).max(2)),
  repetition_penalty: opt(z.number().gt(0).max(10)),
  thinking: opt(z.looseObject({ type: z.enum(['enabled', 'disabled']) })),
  thinking_budget: opt(z.number().int().min(0)),
  n: opt(z.literal(1, { message: 'only n = 1 is supported' })),
});

export type ParsedChatBody = z.infer<typeof ChatCompletionSchema>;

export class RequestValidationError extends Error {
  constructor(message: string, readonly param: string) {
    super(message);
    this.name = 'RequestValidationError';
  }
}

interface Issue {
  path: PropertyKey[];
  message: string;
  code?: string;
  errors?: Issue[][];
}

/**
 * A union that failed reports "Invalid input" at its own path; the branch that
 * got furthest (the longest issue path) says what is actually wrong, e.g.
 * `content` as an array of parts whose part 1 has a bad `image_url.url`.
 */
function specific(issue: Issue): Issue {
  if (issue.code !== 'invalid_union' || !issue.errors?.length) return issue;
  let best: Issue | null = null;
  for (const branch of issue.errors) {
    for (const sub of branch) {
      const full = specific({ ...sub, path: [...issue.path, ...sub.path] });
      if (!best || full.path.length > best.path.length) best = full;
    }
  }
  return best ?? issue;
}

/** Validates a parsed JSON body; throws RequestValidationError naming the first bad field. */
export function parseChatBody(body: unknown): { request: ChatCompletionRequest; stream: boolean; includeUsage: boolean } {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new RequestValidationError('the request body must be a JSON object', 'body');
  }
  const r = ChatCompletionSchema.safeParse(body);
  if (!r.success) {
    const issue = specific(r.error.issues[0]!);
    const param = issue.path.map(String).join('.') || 'body';
    throw new RequestValidationError(`invalid field '${param}': ${issue.message}`, param);
  }
  const b = r.data;
  const drop = <T>(v: T | null | undefined): T | undefined => (v === null ? undefined : v);
  const request: ChatCompletionRequest = {
    messages: b.messages.map((m) => ({ role: m.role, content: m.content as never })),
    ...Object.fromEntries(
      (['model', 'max_tokens', 'max_completion_tokens', 'temperature', 'top_p', 'top_k', 'stop', 'seed', 'presence_penalty',
        'frequency_penalty', 'repetition_penalty', 'thinking', 'thinking_budget'] as const)
        .map((k) => [k, drop(b[k])])
        .filter(([, v]) => v !== undefined),
    ),
  };
  return { request, stream: b.stream ?? false, includeUsage: b.stream_options?.include_usage ?? false };
}
