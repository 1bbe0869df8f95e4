/**
 * Tokenizer loading on top of @huggingface/tokenizers (pure JS, reads the Hugging
 * Face `tokenizer.json` format, including Qwen's byte-level BPE). We add only what
 * the processing layer needs: file loading with typed errors, special-token lookup
 * that fails loudly, and the named special tokens of each model family.
 */
import { readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { Tokenizer as HfTokenizer } from '@huggingface/tokenizers';
import { TokenizerError } from './errors.ts';

/** The special tokens the chat layer needs, by role, spelled as in the vocabulary. */
export interface SpecialTokens {
  /** Start and end of an image ([SOI], [EOI]). */
  imageStart: string;
  imageEnd: string;
  /** One placeholder per LLM image token, replaced by vision embeddings. */
  imagePad: string;
  /** Qwen's video placeholder; Seed treats frames as images. */
  videoPad?: string;
  /** Turn markers: `${turnStart}role\n … ${turnEnd}\n`. */
  turnStart: string;
  turnEnd: string;
  /** End of sequence (generation stops here or at turnEnd). */
  eos: string;
  pad: string;
  thinkStart: string;
  thinkEnd: string;
}

/**
 * Seed: `[SOI]`/`[EOI]` around images (Report App. B.3). Their real spelling and ids,
 * and the role markers, are not disclosed (spec §5); these are project defaults.
 */
export const SEED_SPECIAL_TOKENS: SpecialTokens = {
  imageStart: '[SOI]',
  imageEnd: '[EOI]',
  imagePad: '[IMG]',
  turnStart: '<|im_start|>',
  turnEnd: '<|im_end|>',
  eos: '[EOS]',
  pad: '[PAD]',
  thinkStart: '<think>',
  thinkEnd: '</think>',
};

/** Qwen2/2.5/3-VL (open-models.md §2.1); [SOI]/[EOI] map to the vision delimiters. */
export const QWEN_SPECIAL_TOKENS: SpecialTokens = {
  imageStart: '<|vision_start|>',
  imageEnd: '<|vision_end|>',
  imagePad: '<|image_pad|>',
  videoPad: '<|video_pad|>',
  turnStart: '<|im_start|>',
  turnEnd: '<|im_end|>',
  eos: '<|endoftext|>',
  pad: '<|endoftext|>',
  thinkStart: '<think>',
  thinkEnd: '</think>',
};

export interface EncodeOptions {
  /** Apply the tokenizer's post-processor (BOS/EOS templates). Default false: chat templates add their own. */
  addSpecialTokens?: boolean;
}

export interface DecodeOptions {
  skipSpecialTokens?: boolean;
}

export class Tokenizer {
  private readonly hf: HfTokenizer;
  readonly vocabSize: number;

  constructor(tokenizerJson: object, tokenizerConfig: object = {}) {
    try {
      this.hf = new HfTokenizer(tokenizerJson, tokenizerConfig);
    } catch (e) {
      throw new TokenizerError('invalid_config', `tokenizer.json could not be used: ${(e as Error).message}`, { cause: e });
    }
    this.vocabSize = this.hf.get_vocab(true).size;
  }

  /**
   * Load `tokenizer.json` (and `tokenizer_config.json` next to it, when present) from a
   * file or a checkpoint directory.
   */
  static async fromFile(path: string): Promise<Tokenizer> {
    const file = path.endsWith('.json') ? path : join(path, 'tokenizer.json');
    let json: object;
    try {
      json = JSON.parse(await readFile(file, 'utf8')) as object;
    } catch (e) {
      throw new TokenizerError('load_failed', `cannot load ${file}: ${(e as Error).message}`, { cause: e });
    }
    const cfgPath = join(dirname(file), 'tokenizer_config.json');
    let cfg: object = {};
    if (existsSync(cfgPath)) {
      try {
        cfg = JSON.parse(await readFile(cfgPath, 'utf8')) as object;
      } catch (e) {
        throw new TokenizerError('load_failed', `cannot load ${cfgPath}: ${(e as Error).message}`, { cause: e });
      }
    }
    return new Tokenizer(json, cfg);
  }

  encode(text: string, opts: EncodeOptions = {}): number[] {
    return this.hf.encode(text, { add_special_tokens: opts.addSpecialTokens ?? false }).ids;
  }

  /** Token strings (for debugging and tests). */
  tokenize(text: string): string[] {
    return this.hf.tokenize(text, { add_special_tokens: false });
  }

  decode(ids: readonly number[], opts: DecodeOptions = {}): string {
    return this.hf.decode([...ids], { skip_special_tokens: opts.skipSpecialTokens ?? false, clean_up_tokenization_spaces: false });
  }

  tokenToId(token: string): number | undefined {
    return this.hf.token_to_id(token);
  }

  idToToken(id: number): string | undefined {
    return this.hf.id_to_token(id);
  }

  /** The id of a token that must exist (special tokens); throws a TokenizerError naming it. */
  requireId(token: string): number {
    const id = this.hf.token_to_id(token);
    if (id === undefined) throw new TokenizerError('unknown_token', `token ${JSON.stringify(token)} is not in the vocabulary`);
    return id;
  }

  /** Resolve every special token of a family to its id (fails on the first missing one). */
  specialIds(tokens: SpecialTokens): Record<keyof SpecialTokens, number> {
    const out = {} as Record<keyof SpecialTokens, number>;
    for (const [k, v] of Object.entries(tokens) as [keyof SpecialTokens, string | undefined][]) {
      if (v !== undefined) out[k] = this.requireId(v);
    }
    return out;
  }
}
