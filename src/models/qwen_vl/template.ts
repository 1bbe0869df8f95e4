/**
 * Chat templates of the Qwen-VL families (open-models.md §2.2), on the
 * processing layer's ChatTemplate interface:
 * - Qwen2-VL / Qwen2.5-VL: ChatML; a default system turn ("You are a helpful
 *   assistant.") when the messages have none; each image
 *   `<|vision_start|><|image_pad|>×N<|vision_end|>` (N = t·h·w/4);
 * - Qwen3-VL(-MoE): the same frame without a default system turn.
 * Thinking mode has no effect (the Instruct checkpoints have no switch).
 * Videos (a whole video per part, temporal patches of two frames; golden README):
 * - Qwen2-VL / Qwen2.5-VL: `<|vision_start|><|video_pad|>×N<|vision_end|>`, N = t·h·w/4;
 * - Qwen3-VL: what Qwen3VLProcessor 5.18 makes of `<|vision_start|><|video_pad|><|vision_end|>`:
 *   the outer pair stays and the pad becomes, per temporal patch,
 *   `<t seconds><|vision_start|><|video_pad|>×(h·w/4)<|vision_end|>`.
 */
import type { ChatMessage, ChatTemplate, PromptSegment, VideoTemplate } from '../../processing/chat.ts';
import { splitThinking } from '../../processing/parse.ts';
import { QWEN_SPECIAL_TOKENS } from '../../processing/tokenizer.ts';
import type { QwenFamily } from './config.ts';

const text = (m: ChatMessage): string =>
  typeof m.content === 'string' ? m.content : m.content.map((p) => (p.type === 'text' ? p.text : '')).join('');

function render(messages: ChatMessage[], addGenerationPrompt: boolean, defaultSystem: string | null): PromptSegment[] {
  const tk = QWEN_SPECIAL_TOKENS;
  const segs: PromptSegment[] = [];
  const put = (t: string): void => {
    const last = segs[segs.length - 1];
    if (last && last.type === 'text') last.text += t;
    else segs.push({ type: 'text', text: t });
  };
  const systems = messages.filter((m) => m.role === 'system').map(text);
  const system = systems.length ? systems.join('\n\n') : defaultSystem;
  if (system !== null) put(`${tk.turnStart}system\n${system}${tk.turnEnd}\n`);
  messages.forEach((m, i) => {
    if (m.role === 'system') return;
    put(`${tk.turnStart}${m.role}\n`);
    if (m.role === 'assistant') put(splitThinking(text(m)).content); // past reasoning is not re-sent
    else if (typeof m.content === 'string') put(m.content);
    else for (const p of m.content) p.type === 'text' ? put(p.text) : segs.push({ type: 'media', part: p, messageIndex: i });
    put(`${tk.turnEnd}\n`);
  });
  if (addGenerationPrompt) put(`${tk.turnStart}assistant\n`);
  return segs;
}

export const QWEN2_VL_VIDEO: VideoTemplate = {
  style: 'qwen2_vl',
  expand: (v, ids) => [ids.imageStart, ...new Array<number>(v.groups * v.tokensPerGroup).fill(ids.videoPad), ids.imageEnd],
};

export const QWEN3_VL_VIDEO: VideoTemplate = {
  style: 'qwen3_vl',
  expand(v, ids, encode) {
    const out = [ids.imageStart];
    for (let g = 0; g < v.groups; g++) {
      out.push(...encode(qwen3Timestamp(v.groupTimes[g]!)), ids.imageStart);
      for (let i = 0; i < v.tokensPerGroup; i++) out.push(ids.videoPad);
      out.push(ids.imageEnd);
    }
    out.push(ids.imageEnd);
    return out;
  },
};

function qwenTemplate(name: string, defaultSystem: string | null, video: VideoTemplate): ChatTemplate {
  return {
    name,
    specialTokens: QWEN_SPECIAL_TOKENS,
    supportsVideo: true,
    video,
    render: (messages, opts) => render(messages, opts.addGenerationPrompt ?? true, defaultSystem),
    expandImage: (tokens, ids) => [ids.imageStart, ...new Array<number>(tokens).fill(ids.imagePad), ids.imageEnd],
  };
}

export const QWEN2_VL_CHAT = qwenTemplate('qwen2_vl', 'You are a helpful assistant.', QWEN2_VL_VIDEO);
export const QWEN3_VL_CHAT = qwenTemplate('qwen3_vl', null, QWEN3_VL_VIDEO);

export function templateFor(family: QwenFamily): ChatTemplate {
  return family === 'qwen3_vl' || family === 'qwen3_vl_moe' ? QWEN3_VL_CHAT : QWEN2_VL_CHAT;
}

/**
 * Qwen3-VL timestamp text for a temporal patch: `<{t:.1f} seconds>` with Python's
 * formatting of the exact binary value (round half to even on the decimal
 * expansion): 0.25 → "<0.2 seconds>", where JavaScript's toFixed(1) gives 0.3.
 */
export function qwen3Timestamp(seconds: number): string {
  return `<${formatFixed1(seconds)} seconds>`;
}

/** Python's f"{x:.1f}": the exact decimal value of the double, rounded half-to-even at one decimal. */
export function formatFixed1(x: number): string {
  if (!Number.isFinite(x)) return String(x);
  const neg = x < 0 || Object.is(x, -0);
  const a = Math.abs(x);
  // toFixed(100) is the exact decimal expansion for the magnitudes timestamps have, so ties are seen exactly.
  const s = a.toFixed(100);
  const [ip, fp] = s.split('.');
  let tenths = BigInt(ip) * 10n + BigInt(fp[0]);
  const rest = fp.slice(1);
  const restIsZero = /^0*$/.test(rest);
  const half = rest[0] === '5' && /^50*$/.test(rest);
  if (!restIsZero && (rest[0] > '5' || (rest[0] === '5' && !half) || (half && tenths % 2n === 1n))) tenths += 1n;
  const str = `${tenths / 10n}.${tenths % 10n}`;
  return neg && tenths !== 0n ? `-${str}` : str;
}
