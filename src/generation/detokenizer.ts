/**
 * Incremental detokenization for streaming. Byte-level BPE tokens can end in
 * the middle of a UTF-8 character (an emoji is often 2–4 tokens), and decoding
 * a token alone can differ from decoding it in context (leading-space rules).
 * So we decode a short window of recent tokens twice — with and without the
 * newest ones — and emit only the new suffix, and only once it no longer ends
 * in U+FFFD (an incomplete byte sequence). Concatenating every emitted piece
 * plus `flush()` equals decoding all tokens at once.
 */

export interface TokenDecoder {
  decode(ids: readonly number[]): string;
}

const REPLACEMENT = '\uFFFD';

export class IncrementalDetokenizer {
  private readonly ids: number[] = [];
  /** Start of the context window (tokens before it are never decoded again). */
  private prefixOffset = 0;
  /** Tokens before this index have been emitted. */
  private readOffset = 0;

  constructor(private readonly decoder: TokenDecoder) {}

  /** Adds a token; returns the text that became final (possibly ''). */
  push(id: number): string {
    this.ids.push(id);
    const prefix = this.decode(this.ids.slice(this.prefixOffset, this.readOffset));
    const full = this.decode(this.ids.slice(this.prefixOffset));
    if (full.length > prefix.length && !full.endsWith(REPLACEMENT) && full.startsWith(prefix)) {
      this.prefixOffset = this.readOffset;
      this.readOffset = this.ids.length;
      return full.slice(prefix.length);
    }
    return '';
  }

  /** Whatever is still held back (an unfinished character decodes as U+FFFD). */
  flush(): string {
    if (this.readOffset === this.ids.length) return '';
    const prefix = this.decode(this.ids.slice(this.prefixOffset, this.readOffset));
    const full = this.decode(this.ids.slice(this.prefixOffset));
    this.prefixOffset = this.readOffset = this.ids.length;
    return full.startsWith(prefix) ? full.slice(prefix.length) : full;
  }

  private decode(ids: number[]): string {
    return ids.length === 0 ? '' : this.decoder.decode(ids);
  }

  get tokens(): readonly number[] {
    return this.ids;
  }
}
