/**
 * Stop strings over streamed text. Text that could still turn out to be the
 * start of a stop string is held back, so a client never sees part of a stop
 * string, and a stop string split across tokens is still found.
 */

export class StopStringMatcher {
  private pending = '';
  private readonly maxLen: number;

  constructor(private readonly stops: readonly string[]) {
    this.maxLen = Math.max(0, ...stops.map((s) => s.length));
  }

  /**
   * Feeds new text. Returns the text safe to emit and whether a stop string
   * was found (then `text` ends just before it and the rest is dropped).
   */
  push(delta: string): { text: string; stopped: boolean; stop?: string } {
    if (this.stops.length === 0) return { text: delta, stopped: false };
    this.pending += delta;
    let first = -1;
    let which = '';
    for (const s of this.stops) {
      const i = this.pending.indexOf(s);
      if (i >= 0 && (first < 0 || i < first)) {
        first = i;
        which = s;
      }
    }
    if (first >= 0) {
      const text = this.pending.slice(0, first);
      this.pending = '';
      return { text, stopped: true, stop: which };
    }
    // Hold back the longest suffix that is a proper prefix of some stop string.
    let hold = 0;
    const tail = Math.min(this.pending.length, this.maxLen - 1);
    for (let n = tail; n > 0; n--) {
      const suffix = this.pending.slice(this.pending.length - n);
      if (this.stops.some((s) => s.startsWith(suffix))) {
        hold = n;
        break;
      }
    }
    const text = this.pending.slice(0, this.pending.length - hold);
    this.pending = this.pending.slice(this.pending.length - hold);
    return { text, stopped: false };
  }

  /** End of generation for another reason: the held-back text is real output. */
  flush(): string {
    const t = this.pending;
    this.pending = '';
    return t;
  }
}

/** Validates an OpenAI-style `stop` value (string or up to 4 strings; we allow 16). */
export function normalizeStop(stop: string | readonly string[] | null | undefined): string[] {
  if (stop == null) return [];
  const list = typeof stop === 'string' ? [stop] : [...stop];
  if (list.length > 16) throw new RangeError(`stop: at most 16 stop strings, got ${list.length}`);
  for (const [i, s] of list.entries()) {
    if (typeof s !== 'string' || s.length === 0) throw new RangeError(`stop[${i}] must be a non-empty string`);
  }
  return list;
}
