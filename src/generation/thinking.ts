/**
 * Streaming split of `<think>reasoning</think>answer` into the API's
 * `reasoning_content` and `content` deltas (spec §6.4). Tags split across
 * tokens are found by holding back text that may be the start of a tag.
 * Each section is trimmed like `splitThinking` trims it: leading whitespace
 * is dropped, trailing whitespace is held until more text follows, and several
 * reasoning blocks are joined with a blank line. The non-streamed response
 * runs the same splitter over the whole text, so streamed deltas concatenate
 * to exactly the non-streamed fields.
 */

export type Section = 'reasoning' | 'content';

export interface SplitDelta {
  reasoning: string;
  content: string;
}

const OPEN = '<think>';
const CLOSE = '</think>';

export class ThinkingSplitter {
  private buf = '';
  private mode: Section;
  private started: Record<Section, boolean> = { reasoning: false, content: false };
  private pendingWs: Record<Section, string> = { reasoning: '', content: '' };
  private hadReasoning = false;

  /** `startInReasoning`: the prompt already opened a `<think>` block. */
  constructor(startInReasoning = false) {
    this.mode = startInReasoning ? 'reasoning' : 'content';
  }

  /** The section the next text belongs to (for thinking budgets). */
  get section(): Section {
    return this.mode;
  }

  push(delta: string): SplitDelta {
    const out: SplitDelta = { reasoning: '', content: '' };
    this.buf += delta;
    for (;;) {
      const tag = this.mode === 'content' ? OPEN : CLOSE;
      const i = this.buf.indexOf(tag);
      if (i >= 0) {
        this.emit(this.buf.slice(0, i), out);
        this.buf = this.buf.slice(i + tag.length);
        this.switchMode();
        continue;
      }
      let hold = 0;
      for (let n = Math.min(this.buf.length, tag.length - 1); n > 0; n--) {
        if (tag.startsWith(this.buf.slice(this.buf.length - n))) {
          hold = n;
          break;
        }
      }
      this.emit(this.buf.slice(0, this.buf.length - hold), out);
      this.buf = this.buf.slice(this.buf.length - hold);
      return out;
    }
  }

  /** End of text: a partial tag is literal text; trailing whitespace is dropped. */
  finish(): SplitDelta {
    const out: SplitDelta = { reasoning: '', content: '' };
    this.emit(this.buf, out);
    this.buf = '';
    return out;
  }

  private switchMode(): void {
    if (this.mode === 'content') {
      this.mode = 'reasoning';
      this.started.reasoning = false;
    } else {
      this.mode = 'content';
    }
    this.pendingWs.reasoning = '';
  }

  private emit(text: string, out: SplitDelta): void {
    if (!text) return;
    const sec = this.mode;
    let s = text;
    if (!this.started[sec]) {
      s = s.trimStart();
      if (!s) return;
      this.started[sec] = true;
      if (sec === 'reasoning' && this.hadReasoning) s = '\n\n' + s;
      if (sec === 'reasoning') this.hadReasoning = true;
    }
    s = this.pendingWs[sec] + s;
    const ws = /\s+$/.exec(s);
    this.pendingWs[sec] = ws ? ws[0] : '';
    out[sec] += ws ? s.slice(0, s.length - ws[0].length) : s;
  }
}

/** Splits a complete text with the streaming rules (what a non-streamed response carries). */
export function splitThinkingText(text: string, startInReasoning = false): { reasoning_content: string; content: string } {
  const s = new ThinkingSplitter(startInReasoning);
  const a = s.push(text);
  const b = s.finish();
  return { reasoning_content: a.reasoning + b.reasoning, content: a.content + b.content };
}
