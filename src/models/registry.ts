/**
 * The model registry: which model class a checkpoint directory holds, from its
 * config.json (`model_type`, then `architectures`), and one loader that turns
 * any supported directory into what the runtime serves (a GenerationModel with
 * its tokenizer, chat template, image processor and answer parser).
 *
 * Unknown model types are refused with the list of supported ones; missing
 * files and bad keys are errors naming the file and the key.
 */
import { existsSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import type { GenerationModel } from '../generation/model.ts';
import type { ChatTemplate } from '../processing/chat.ts';
import { SEED_TEMPLATE } from '../processing/chat.ts';
import { Tokenizer, QWEN_SPECIAL_TOKENS, type SpecialTokens } from '../processing/tokenizer.ts';
import { TokenizerError } from '../processing/errors.ts';
import { SEED_VISION, type VisionPreprocessConfig } from '../processing/vision_config.ts';
import { parseBoxes, parsePoints, type ParsedBox, type ParsedPoint, type ParseResult } from '../processing/parse.ts';
import { QWEN_ARCHITECTURES, QWEN_FAMILIES, ConfigError, detectFamily, type QwenFamily, type QwenVLConfig } from './qwen_vl/config.ts';
import { loadQwenModel, readJsonFile, readQwenConfig } from './qwen_vl/load.ts';
import { QwenVLRuntime } from './qwen_vl/runtime.ts';
import { templateFor } from './qwen_vl/template.ts';
import { parseQwenObjects, type QwenImageSizes } from './qwen_vl/parse.ts';

/** Model types this build can load, with the Hub architectures that map to them. */
export const SUPPORTED_MODELS: { modelType: string; architectures: string[]; description: string }[] = [
  { modelType: 'seed_vl', architectures: [], description: 'Seed1.5-VL (our own checkpoints)' },
  ...QWEN_FAMILIES.map((f) => ({
    modelType: f,
    architectures: [QWEN_ARCHITECTURES[f]],
    description: { qwen2_vl: 'Qwen2-VL', qwen2_5_vl: 'Qwen2.5-VL', qwen3_vl: 'Qwen3-VL', qwen3_vl_moe: 'Qwen3-VL-MoE' }[f],
  })),
];

export type ModelKind = { kind: 'seed_vl' } | { kind: 'qwen_vl'; family: QwenFamily };

const supportedList = (): string => SUPPORTED_MODELS.map((m) => `${m.modelType}${m.architectures.length ? ` (${m.architectures.join(', ')})` : ''}`).join(', ');

/** Which model a directory holds; throws naming config.json and the key for anything unsupported. */
export function detectModelDir(dirIn: string): ModelKind {
  const dir = resolve(dirIn);
  const file = join(dir, 'config.json');
  if (!existsSync(dir)) throw new ConfigError(`${dir}: directory not found`);
  const json = readJsonFile(file)!;
  if (json['model_type'] === 'seed_vl') return { kind: 'seed_vl' };
  const family = detectFamily(json);
  if (family) return { kind: 'qwen_vl', family };
  throw new ConfigError(
    `${file}: model_type ${JSON.stringify(json['model_type'] ?? null)} (architectures ${JSON.stringify(json['architectures'] ?? null)}) is not supported; supported model types: ${supportedList()}`,
  );
}

/** Images as the model saw them, for mapping coordinates back. */
export type ImageSizes = QwenImageSizes;

export interface ParsedObjects {
  boxes: ParseResult<ParsedBox>;
  points: ParseResult<ParsedPoint>;
}

export interface LoadedModelDir {
  kind: ModelKind;
  name: string;
  model: GenerationModel;
  tokenizer: Tokenizer;
  template: ChatTemplate;
  /** Image preprocessing (pass as the Engine's `vision`). */
  vision: VisionPreprocessConfig;
  /** Token ids that end an answer. */
  stopTokenIds: number[];
  /** Boxes/points of an answer in original-image pixels (the first image's, when given). */
  parseObjects(text: string, image?: ImageSizes): ParsedObjects;
  qwenConfig?: QwenVLConfig;
  warnings: string[];
}

/** Seed convention: coordinates on a 0–999 grid over the original image. */
export function seedParseObjects(text: string, image?: ImageSizes): ParsedObjects {
  const size = image ? { size: image.original } : {};
  return { boxes: parseBoxes(text, size), points: parsePoints(text, size) };
}

export interface LoadModelDirOptions {
  /** Sequences decoded together (KV cache rows). Default 4. */
  maxBatch?: number;
  /** Longest prompt + answer (KV cache positions). Default min(4096, max_position_embeddings). */
  maxContext?: number;
  /** Qwen: keep matrices as stored (default) or convert to f32 copies. */
  weights?: 'stored' | 'float32';
}

/**
 * The template's special tokens as this tokenizer spells them. Qwen2/2.5 tokenizers
 * have no `<think>` tokens, which the processing layer resolves for every template;
 * they are mapped to the turn markers there (nothing else uses them for Qwen).
 */
function qwenSpecialTokens(tok: Tokenizer): SpecialTokens {
  const hasThink = tok.tokenToId('<think>') !== undefined && tok.tokenToId('</think>') !== undefined;
  return hasThink ? QWEN_SPECIAL_TOKENS : { ...QWEN_SPECIAL_TOKENS, thinkStart: QWEN_SPECIAL_TOKENS.turnStart, thinkEnd: QWEN_SPECIAL_TOKENS.turnEnd };
}

async function qwenTokenizer(dir: string, cfg: QwenVLConfig): Promise<Tokenizer> {
  const file = join(dir, 'tokenizer.json');
  if (!existsSync(file)) throw new TokenizerError('load_failed', `${file}: file not found (the tokenizer is needed to run the model)`);
  const tok = await Tokenizer.fromFile(dir);
  const need: [string, number][] = [
    ['<|im_start|>', -1], ['<|im_end|>', -1], ['<|endoftext|>', -1],
    ['<|vision_start|>', cfg.visionStartTokenId], ['<|vision_end|>', cfg.visionEndTokenId],
    ['<|image_pad|>', cfg.imageTokenId], ['<|video_pad|>', cfg.videoTokenId],
  ];
  for (const [token, want] of need) {
    const id = tok.tokenToId(token);
    if (id === undefined) throw new TokenizerError('unknown_token', `${file}: special token ${token} is missing from the vocabulary (added_tokens)`);
    if (want >= 0 && id !== want) {
      throw new TokenizerError('invalid_config', `${file}: ${token} has id ${id}, but config.json says ${want} (image_token_id / video_token_id / vision_*_token_id)`);
    }
  }
  return tok;
}

/** Loads any supported model directory for generation. */
export async function loadModelDir(dirIn: string, opts: LoadModelDirOptions = {}): Promise<LoadedModelDir> {
  const dir = resolve(dirIn);
  const kind = detectModelDir(dir);
  const maxBatch = opts.maxBatch ?? 4;
  if (kind.kind === 'seed_vl') {
    const { loadGenerationModel } = await import('../generation/loader.ts');
    const l = await loadGenerationModel({ model: dir, maxBatch, ...(opts.maxContext ? { maxContext: opts.maxContext } : {}) });
    const sp = SEED_TEMPLATE.specialTokens;
    return {
      kind, name: l.name, model: l.model, tokenizer: l.tokenizer, template: SEED_TEMPLATE, vision: SEED_VISION,
      stopTokenIds: [l.tokenizer.requireId(sp.eos), l.tokenizer.requireId(sp.turnEnd)],
      parseObjects: seedParseObjects,
      warnings: l.warnings,
    };
  }
  const cfg = readQwenConfig(dir);
  const tokenizer = await qwenTokenizer(dir, cfg); // before the weights: a bad tokenizer fails fast
  const loaded = loadQwenModel(dir, { weights: opts.weights ?? 'stored' });
  const maxContext = Math.min(opts.maxContext ?? 4096, loaded.config.text.maxPositionEmbeddings);
  const model = new QwenVLRuntime(loaded.model, { maxBatch, maxLength: maxContext, name: basename(dir) });
  const template = { ...templateFor(kind.family), specialTokens: qwenSpecialTokens(tokenizer) };
  return {
    kind, name: basename(dir), model, tokenizer, template, vision: loaded.imageProcessor,
    stopTokenIds: [...new Set([...loaded.eosTokenIds, tokenizer.requireId('<|im_end|>')])],
    parseObjects: (text, image) => parseQwenObjects(text, kind.family, image),
    qwenConfig: loaded.config,
    warnings: loaded.warnings,
  };
}
