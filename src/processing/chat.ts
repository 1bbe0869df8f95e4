/**
 * Chat messages and templates. Requests use the OpenAI shape (content parts
 * `text`, `image_url`, `video_url`, plus `video_frames` for a list of frames with
 * timestamps) and Seed's `thinking: {type: enabled|disabled}` switch. A template
 * turns messages into text and media segments; chat_inputs.ts turns those into ids.
 *
 * Seed's role markers and the two mode system prompts are not disclosed (spec §5,
 * §14 #14); SEED_TEMPLATE uses ChatML-style markers and the prompts below as project
 * defaults, all overridable.
 */
import { ChatError } from './errors.ts';
import { splitThinking, type ThinkingSplit } from './parse.ts';
import type { RgbImage } from './resample.ts';
import type { MediaSource } from './source.ts';
import { QWEN_SPECIAL_TOKENS, SEED_SPECIAL_TOKENS, type SpecialTokens } from './tokenizer.ts';
import type { VideoTask } from './video_sampling.ts';
import type { QwenVideoStyle } from './video_qwen.ts';

export type Role = 'system' | 'user' | 'assistant';

export type ContentPart =
  | { type: 'text'; text: string }
  | { type: 'image_url'; image_url: string | { url: string; detail?: string } }
  /** Already decoded pixels (tests, screenshots taken in-process). */
  | { type: 'image'; image: RgbImage }
  | { type: 'video_url'; video_url: string | { url: string; fps?: number; task?: VideoTask } }
  /** A list of frames with timestamps in seconds. */
  | { type: 'video_frames'; frames: { image: RgbImage | MediaSource; t: number }[] };

export interface ChatMessage {
  role: Role;
  content: string | ContentPart[];
  /** Reasoning of a past assistant turn (not re-sent to the model by default). */
  reasoning_content?: string;
}

export type ThinkingMode = 'enabled' | 'disabled';

export interface ChatRequest {
  messages: ChatMessage[];
  /** Seed API switch; enabled by default, like the hosted API. */
  thinking?: { type: ThinkingMode };
}

/** A piece of rendered prompt: text (may contain special-token strings) or a media part. */
export type PromptSegment =
  | { type: 'text'; text: string }
  | { type: 'media'; part: Exclude<ContentPart, { type: 'text' }>; messageIndex: number };

export interface RenderOptions {
  thinking: ThinkingMode;
  /** Append the assistant turn opener so the model answers next (default true). */
  addGenerationPrompt?: boolean;
}

export interface ChatTemplate {
  name: string;
  specialTokens: SpecialTokens;
  /** How model coordinates relate to the image (see coords.ts). */
  render(messages: ChatMessage[], opts: RenderOptions): PromptSegment[];
  /** Token ids for one image of `tokens` LLM tokens; `timestamp` is set for video frames. */
  expandImage(tokens: number, ids: Record<keyof SpecialTokens, number>, encode: (text: string) => number[], timestamp?: string): number[];
  /** Whether video parts are supported by this template. */
  supportsVideo: boolean;
  /**
   * Templates that take a video as one unit of temporal patches (the Qwen families):
   * how its frames are sampled and sized (video_qwen.ts) and its token layout.
   * Without it, a video is a list of frames, each expanded with `expandImage`.
   */
  video?: VideoTemplate;
}

/** A processed video as a template sees it. */
export interface VideoLayout {
  /** Temporal patches (groups of frames). */
  groups: number;
  /** LLM tokens per temporal patch. */
  tokensPerGroup: number;
  /** Mean time in seconds of each temporal patch's frames. */
  groupTimes: readonly number[];
}

export interface VideoTemplate {
  style: QwenVideoStyle;
  /** Token ids of one whole video. */
  expand(video: VideoLayout, ids: Record<keyof SpecialTokens, number>, encode: (text: string) => number[]): number[];
}

/** Project-default mode prompts (the real ones are not published). */
export const SEED_MODE_PROMPTS: Record<ThinkingMode, string> = {
  enabled:
    'You are a helpful assistant. Before answering, think through the problem step by step. Put your reasoning inside <think> </think> tags, then give the final answer after </think>.',
  disabled: 'You are a helpful assistant. Answer directly and concisely.',
};

/** Validate a request (roles, part types, thinking switch); throws ChatError naming the problem. */
export function validateRequest(req: ChatRequest): ThinkingMode {
  if (!Array.isArray(req.messages) || req.messages.length === 0) throw new ChatError('invalid_message', 'messages must be a non-empty array');
  const mode = req.thinking?.type ?? 'enabled';
  if (mode !== 'enabled' && mode !== 'disabled') throw new ChatError('invalid_message', `thinking.type must be "enabled" or "disabled", got ${JSON.stringify(mode)}`);
  req.messages.forEach((m, i) => {
    if (!m || !['system', 'user', 'assistant'].includes(m.role)) throw new ChatError('invalid_message', `message ${i} has an unknown role ${JSON.stringify(m?.role)}`);
    if (typeof m.content === 'string') return;
    if (!Array.isArray(m.content)) throw new ChatError('invalid_message', `message ${i} content must be a string or an array of parts`);
    m.content.forEach((p, j) => {
      const t = (p as { type?: unknown })?.type;
      if (!['text', 'image_url', 'image', 'video_url', 'video_frames'].includes(t as string)) {
        throw new ChatError('unsupported_part', `message ${i} part ${j} has an unsupported type ${JSON.stringify(t)}`);
      }
      if (m.role !== 'user' && t !== 'text') throw new ChatError('unsupported_part', `message ${i} (${m.role}) may only contain text parts`);
    });
  });
  return mode;
}

function partsOf(m: ChatMessage): ContentPart[] {
  return typeof m.content === 'string' ? [{ type: 'text', text: m.content }] : m.content;
}

function textOf(m: ChatMessage): string {
  return partsOf(m)
    .map((p) => (p.type === 'text' ? p.text : ''))
    .join('');
}

/** ChatML framing shared by the Seed default and Qwen: `<|im_start|>role\n…<|im_end|>\n`. */
function renderChatML(messages: ChatMessage[], opts: RenderOptions, system: string, tk: SpecialTokens): PromptSegment[] {
  const segs: PromptSegment[] = [];
  const text = (t: string) => {
    const last = segs[segs.length - 1];
    if (last && last.type === 'text') last.text += t;
    else segs.push({ type: 'text', text: t });
  };
  if (system) text(`${tk.turnStart}system\n${system}${tk.turnEnd}\n`);
  messages.forEach((m, i) => {
    if (m.role === 'system') return;
    text(`${tk.turnStart}${m.role}\n`);
    // Past reasoning is dropped: the model only ever sees final answers of earlier turns.
    if (m.role === 'assistant') text(splitThinking(textOf(m)).content);
    else for (const p of partsOf(m)) p.type === 'text' ? text(p.text) : segs.push({ type: 'media', part: p, messageIndex: i });
    text(`${tk.turnEnd}\n`);
  });
  if (opts.addGenerationPrompt ?? true) text(`${tk.turnStart}assistant\n`);
  return segs;
}

function userSystem(messages: ChatMessage[]): string | undefined {
  const sys = messages.filter((m) => m.role === 'system').map(textOf);
  return sys.length ? sys.join('\n\n') : undefined;
}

export interface SeedTemplateOptions {
  modePrompts?: Record<ThinkingMode, string>;
  specialTokens?: SpecialTokens;
}

/**
 * Seed1.5-VL: the mode prompt (thinking on/off) opens the system turn, followed by the
 * caller's own system message; each image is `[SOI] [IMG]×N [EOI]`; each video frame is
 * `[t second]` followed by its image block.
 */
export function seedTemplate(o: SeedTemplateOptions = {}): ChatTemplate {
  const prompts = o.modePrompts ?? SEED_MODE_PROMPTS;
  const tk = o.specialTokens ?? SEED_SPECIAL_TOKENS;
  return {
    name: 'seed',
    specialTokens: tk,
    supportsVideo: true,
    render(messages, opts) {
      const own = userSystem(messages);
      const system = own ? `${prompts[opts.thinking]}\n\n${own}` : prompts[opts.thinking];
      return renderChatML(messages, opts, system, tk);
    },
    expandImage(tokens, ids, encode, timestamp) {
      const out = timestamp ? encode(timestamp) : [];
      out.push(ids.imageStart);
      for (let i = 0; i < tokens; i++) out.push(ids.imagePad);
      out.push(ids.imageEnd);
      return out;
    },
  };
}

export const SEED_TEMPLATE = seedTemplate();

/**
 * Qwen2-VL / Qwen2.5-VL chat template (images only; open-models.md §2.2): a default
 * system turn when none is given, `<|vision_start|><|image_pad|>×N<|vision_end|>` per
 * image. Thinking has no effect. Qwen video layouts belong to the open-checkpoints work
 * and plug in through the same interface.
 */
export const QWEN2_VL_TEMPLATE: ChatTemplate = {
  name: 'qwen2_vl',
  specialTokens: QWEN_SPECIAL_TOKENS,
  supportsVideo: false,
  render(messages, opts) {
    return renderChatML(messages, opts, userSystem(messages) ?? 'You are a helpful assistant.', QWEN_SPECIAL_TOKENS);
  },
  expandImage(tokens, ids) {
    return [ids.imageStart, ...new Array<number>(tokens).fill(ids.imagePad), ids.imageEnd];
  },
};

/** Split a finished generation into the API's `reasoning_content` and `content`. */
export function splitAssistantOutput(text: string): ThinkingSplit {
  return splitThinking(text.replace(/\[EOS\]\s*$/, ''));
}
