/**
 * Build a small byte-level BPE `tokenizer.json` for from-scratch models. This writes
 * data (a vocabulary and merges learned from a corpus); encoding and decoding are
 * done by the tokenizer library that loads the result, exactly as for Qwen's file.
 * The layout mirrors Qwen2's tokenizer.json: NFC, regex split, ByteLevel, BPE.
 */
import { SEED_SPECIAL_TOKENS } from './tokenizer.ts';

/** Qwen2's pre-tokenizer split pattern (numbers are split into single digits). */
export const QWEN_SPLIT_PATTERN =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

/** GPT-2's reversible byte → printable character table used by ByteLevel. */
export function bytesToUnicode(): string[] {
  const bs: number[] = [];
  for (let b = 33; b <= 126; b++) bs.push(b);
  for (let b = 161; b <= 172; b++) bs.push(b);
  for (let b = 174; b <= 255; b++) bs.push(b);
  const cs = [...bs];
  let n = 0;
  for (let b = 0; b < 256; b++) {
    if (!bs.includes(b)) {
      bs.push(b);
      cs.push(256 + n);
      n++;
    }
  }
  const table = new Array<string>(256);
  bs.forEach((b, i) => (table[b] = String.fromCodePoint(cs[i]!)));
  return table;
}

export interface BuildTokenizerOptions {
  /** Text to learn merges from; empty gives a pure byte-level vocabulary (256 tokens). */
  corpus?: string[];
  /** Target size of the BPE vocabulary before special tokens (≥ 256). */
  vocabSize?: number;
  /** Added special tokens, appended after the BPE vocabulary in this order. */
  specialTokens?: string[];
}

/** The Seed project-default special tokens, in id order. */
export const DEFAULT_BUILD_SPECIALS: string[] = [
  ...new Set([
    SEED_SPECIAL_TOKENS.eos,
    SEED_SPECIAL_TOKENS.pad,
    SEED_SPECIAL_TOKENS.turnStart,
    SEED_SPECIAL_TOKENS.turnEnd,
    SEED_SPECIAL_TOKENS.imageStart,
    SEED_SPECIAL_TOKENS.imageEnd,
    SEED_SPECIAL_TOKENS.imagePad,
    SEED_SPECIAL_TOKENS.thinkStart,
    SEED_SPECIAL_TOKENS.thinkEnd,
  ]),
];

/**
 * Learn byte-level BPE merges: repeatedly merge the most frequent adjacent pair
 * (ties: the lexicographically smallest pair, so the result is deterministic).
 */
export function trainMerges(corpus: string[], vocabSize: number): [string, string][] {
  const table = bytesToUnicode();
  const split = new RegExp(QWEN_SPLIT_PATTERN.replace('(?i:', '(?:'), 'gu');
  const enc = new TextEncoder();
  const words = new Map<string, { syms: string[]; count: number }>();
  for (const text of corpus) {
    for (const m of text.normalize('NFC').matchAll(split)) {
      const w = Array.from(enc.encode(m[0]), (b) => table[b]!).join('');
      const e = words.get(w);
      if (e) e.count++;
      else words.set(w, { syms: Array.from(enc.encode(m[0]), (b) => table[b]!), count: 1 });
    }
  }
  const merges: [string, string][] = [];
  const target = Math.max(0, vocabSize - 256);
  while (merges.length < target) {
    const pairs = new Map<string, number>();
    for (const { syms, count } of words.values()) {
      for (let i = 0; i + 1 < syms.length; i++) {
        const k = `${syms[i]}\u0000${syms[i + 1]}`;
        pairs.set(k, (pairs.get(k) ?? 0) + count);
      }
    }
    let best: string | undefined;
    let bestCount = 1; // a pair seen once is not worth a token
    for (const [k, c] of pairs) {
      if (c > bestCount || (c === bestCount && best !== undefined && k < best)) {
        best = k;
        bestCount = c;
      }
    }
    if (best === undefined) break;
    const [a, b] = best.split('\u0000') as [string, string];
    merges.push([a, b]);
    for (const w of words.values()) {
      const s = w.syms;
      const out: string[] = [];
      for (let i = 0; i < s.length; i++) {
        if (i + 1 < s.length && s[i] === a && s[i + 1] === b) {
          out.push(a + b);
          i++;
        } else out.push(s[i]!);
      }
      w.syms = out;
    }
  }
  return merges;
}

/** A complete tokenizer.json object (serialise with JSON.stringify). */
export function buildTokenizerJson(opts: BuildTokenizerOptions = {}): Record<string, unknown> {
  const table = bytesToUnicode();
  const vocab: Record<string, number> = {};
  // Byte tokens in byte order, so id = byte value for the base vocabulary.
  table.forEach((ch, b) => (vocab[ch] = b));
  const merges = opts.corpus && opts.corpus.length > 0 ? trainMerges(opts.corpus, opts.vocabSize ?? 512) : [];
  for (const [a, b] of merges) {
    const t = a + b;
    if (vocab[t] === undefined) vocab[t] = Object.keys(vocab).length;
  }
  const specials = opts.specialTokens ?? DEFAULT_BUILD_SPECIALS;
  let next = Object.keys(vocab).length;
  const added = specials.map((content) => ({ id: next++, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true }));
  const byteLevel = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false };
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: added,
    normalizer: { type: 'NFC' },
    pre_tokenizer: { type: 'Sequence', pretokenizers: [{ type: 'Split', pattern: { Regex: QWEN_SPLIT_PATTERN }, behavior: 'Isolated', invert: false }, byteLevel] },
    post_processor: byteLevel,
    decoder: byteLevel,
    model: { type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: '', end_of_word_suffix: '', fuse_unk: false, byte_fallback: false, ignore_merges: false, vocab, merges },
  };
}
