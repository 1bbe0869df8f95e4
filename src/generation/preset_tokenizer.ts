/**
 * A tokenizer for random-initialised presets and for model directories saved
 * without one: byte-level BPE whose special tokens sit at the ids the config
 * names ([PAD], [EOS], [SOI], [EOI], [IMG]), the other Seed specials next, then
 * the 256 bytes, merges learned from a small built-in corpus, and reserved
 * tokens up to the vocabulary size, so every id a random model can emit
 * decodes to something.
 */
import { Tokenizer, buildTokenizerJson, SEED_SPECIAL_TOKENS } from '../processing/index.ts';
import type { SeedVLConfig } from '../models/seed_vl/config.ts';

const CORPUS = [
  'The quick brown fox jumps over the lazy dog. A picture is worth a thousand words.',
  'What is in this image? Describe the scene, count the objects and give their boxes.',
  'The answer is: there are two cats on the sofa, a red cup on the table and a window.',
  'Please think step by step, then answer the question about the chart and the table.',
  'Seed1.5-VL is a vision-language model. It reads images and videos and writes text.',
];

interface AddedToken {
  id: number;
  content: string;
  single_word: boolean;
  lstrip: boolean;
  rstrip: boolean;
  normalized: boolean;
  special: boolean;
}

/** tokenizer.json (object) for a Seed config; deterministic. */
export function presetTokenizerJson(cfg: SeedVLConfig): Record<string, unknown> {
  const V = cfg.language.vocabSize;
  const fixed = new Map<number, string>([
    [cfg.padTokenId, SEED_SPECIAL_TOKENS.pad],
    [cfg.eosTokenId, SEED_SPECIAL_TOKENS.eos],
    [cfg.soiTokenId, SEED_SPECIAL_TOKENS.imageStart],
    [cfg.eoiTokenId, SEED_SPECIAL_TOKENS.imageEnd],
    [cfg.imageTokenId, SEED_SPECIAL_TOKENS.imagePad],
  ]);
  const others = [SEED_SPECIAL_TOKENS.turnStart, SEED_SPECIAL_TOKENS.turnEnd, SEED_SPECIAL_TOKENS.thinkStart, SEED_SPECIAL_TOKENS.thinkEnd];
  let next = 0;
  const take = (): number => {
    while (fixed.has(next)) next++;
    return next++;
  };
  for (const t of others) fixed.set(take(), t);
  // Bytes and merges from the library's builder, renumbered around the fixed ids.
  const base = buildTokenizerJson({ corpus: CORPUS, vocabSize: Math.min(V, 1024), specialTokens: [] }) as {
    model: { vocab: Record<string, number> };
    added_tokens: AddedToken[];
  };
  const entries = Object.entries(base.model.vocab).sort((a, b) => a[1] - b[1]);
  const vocab: Record<string, number> = {};
  for (const [tok] of entries) {
    const id = take();
    if (id >= V) throw new RangeError(`presetTokenizerJson: vocabulary ${V} is too small for 256 bytes and ${fixed.size} special tokens`);
    vocab[tok] = id;
  }
  const special = (id: number, content: string): AddedToken => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });
  const added: AddedToken[] = [...fixed].map(([id, content]) => special(id, content));
  for (let id = take(); id < V; id = take()) added.push(special(id, `<|reserved_${id}|>`));
  added.sort((a, b) => a.id - b.id);
  return { ...base, added_tokens: added, model: { ...base.model, vocab } };
}

export function presetTokenizer(cfg: SeedVLConfig): Tokenizer {
  return new Tokenizer(presetTokenizerJson(cfg));
}

/** Throws unless the tokenizer's Seed special tokens have the config's ids (the model finds images by id). */
export function checkTokenizerMatches(tok: Tokenizer, cfg: SeedVLConfig): void {
  const want: [string, number][] = [
    [SEED_SPECIAL_TOKENS.imageStart, cfg.soiTokenId],
    [SEED_SPECIAL_TOKENS.imageEnd, cfg.eoiTokenId],
    [SEED_SPECIAL_TOKENS.imagePad, cfg.imageTokenId],
    [SEED_SPECIAL_TOKENS.eos, cfg.eosTokenId],
  ];
  for (const [t, id] of want) {
    const got = tok.tokenToId(t);
    if (got !== id) throw new Error(`tokenizer: ${t} has id ${got ?? 'none'} but config.json says ${id}`);
  }
}
