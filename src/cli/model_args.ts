/**
 * Options shared by `seedvl run`, `chat` and `serve`: which model to load,
 * how to sample, and a progress bar for loading. (Part of the generation CLI;
 * `run.ts`, `chat.ts`, `serve.ts` import it.)
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { loadGenerationModel, type LoadProgress } from '../generation/loader.ts';
import { detectModelDir, loadModelDir, seedParseObjects, type LoadedModelDir } from '../models/registry.ts';
import { Engine } from '../generation/engine.ts';
import { QwenVLRuntime } from '../models/qwen_vl/runtime.ts';
import { quantizeQwenModel } from '../models/qwen_vl/quantize.ts';
import { parseQwenQuantConfig } from '../models/qwen_vl/quant_config.ts';
import { readJsonFile } from '../models/qwen_vl/load.ts';
import type { SamplingParams } from '../generation/sampling.ts';
import { setMatmulPrecision } from '../tensor/ops/matmul.ts';
import { native } from '../tensor/native.ts';
import { join } from 'node:path';

export const MODEL_OPTIONS = {
  model: { type: 'string' },
  preset: { type: 'string' },
  seed: { type: 'string' },
  quantize: { type: 'string' },
  'max-context': { type: 'string' },
  'max-batch': { type: 'string' },
  threads: { type: 'string' },
  precision: { type: 'string' },
} as const satisfies ParseArgsConfig['options'];

export const SAMPLING_OPTIONS = {
  temperature: { type: 'string' },
  'top-p': { type: 'string' },
  'top-k': { type: 'string' },
  'repetition-penalty': { type: 'string' },
  'sample-seed': { type: 'string' },
  'max-tokens': { type: 'string' },
  stop: { type: 'string', multiple: true },
  thinking: { type: 'string' },
  'thinking-budget': { type: 'string' },
} as const satisfies ParseArgsConfig['options'];

export const MODEL_HELP = `model:
  --model DIR            a model directory (config.json + safetensors; float or quantised)
  --preset NAME          a random-initialised preset (tiny, small): answers are noise
  --seed N               seed of the preset's random weights (default 0)
  --quantize 4|8         quantise Linear weights to int4/int8 after loading
  --max-context N        longest prompt + answer in tokens (default 4096)
  --max-batch N          sequences decoded together (default 4)
  --threads N            compute threads (default: all cores)
  --precision P          products with bf16 weights, and attention: f32 (exact), bf16
                         (activations rounded to bf16, AMX tiles), or auto (default:
                         bf16 for a bf16 checkpoint on a CPU with AMX-BF16, else f32;
                         SEEDVL_MATMUL_PRECISION sets the default)`;

export const SAMPLING_HELP = `sampling:
  --temperature T        0 = greedy (default 1)
  --top-p P, --top-k K   nucleus / top-k sampling
  --repetition-penalty R
  --sample-seed N        seed of the sampler (reproducible answers)
  --max-tokens N         longest answer (default 512)
  --stop TEXT            stop string (repeatable)
  --thinking on|off      reasoning mode (default on)
  --thinking-budget N    most reasoning tokens, then </think> is forced`;

export class UsageError extends Error {}

export function num(v: string | undefined, flag: string, o: { int?: boolean; min?: number; max?: number } = {}): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || (o.int && !Number.isInteger(n)) || (o.min !== undefined && n < o.min) || (o.max !== undefined && n > o.max)) {
    throw new UsageError(`--${flag} must be ${o.int ? 'an integer' : 'a number'}${o.min !== undefined ? ` ≥ ${o.min}` : ''}${o.max !== undefined ? ` ≤ ${o.max}` : ''}, got '${v}'`);
  }
  return n;
}

export function parse<T extends ParseArgsConfig['options']>(argv: string[], options: T, positionals = true) {
  try {
    return parseArgs({ args: argv, options: { ...options, help: { type: 'boolean', short: 'h' } }, allowPositionals: positionals, strict: true });
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

type Values = Record<string, string | boolean | string[] | undefined>;

export function samplingFrom(v: Values): { sampling: SamplingParams; maxTokens?: number; stop?: string[]; thinking: 'enabled' | 'disabled'; thinkingBudget?: number } {
  const s = (k: string) => v[k] as string | undefined;
  const sampling: SamplingParams = {};
  const t = num(s('temperature'), 'temperature', { min: 0, max: 2 });
  if (t !== undefined) sampling.temperature = t;
  const p = num(s('top-p'), 'top-p', { min: 0, max: 1 });
  if (p !== undefined) sampling.topP = p;
  const k = num(s('top-k'), 'top-k', { int: true, min: 0 });
  if (k !== undefined) sampling.topK = k;
  const r = num(s('repetition-penalty'), 'repetition-penalty', { min: 0 });
  if (r !== undefined) sampling.repetitionPenalty = r;
  const seed = num(s('sample-seed'), 'sample-seed', { int: true });
  if (seed !== undefined) sampling.seed = seed;
  const th = s('thinking') ?? 'on';
  if (!['on', 'off', 'enabled', 'disabled'].includes(th)) throw new UsageError(`--thinking must be on or off, got '${th}'`);
  const maxTokens = num(s('max-tokens'), 'max-tokens', { int: true, min: 1 });
  const budget = num(s('thinking-budget'), 'thinking-budget', { int: true, min: 0 });
  return {
    sampling,
    ...(maxTokens !== undefined ? { maxTokens } : {}),
    ...(v.stop ? { stop: v.stop as string[] } : {}),
    thinking: th === 'on' || th === 'enabled' ? 'enabled' : 'disabled',
    ...(budget !== undefined ? { thinkingBudget: budget } : {}),
  };
}

/** A progress bar on stderr (redrawn in place on a terminal, one line per stage otherwise). */
export function progressBar(label: string): (p: LoadProgress) => void {
  const tty = process.stderr.isTTY;
  let lastStage = '';
  return (p) => {
    const frac = p.total ? p.done / p.total : 1;
    if (tty) {
      const width = 30;
      const fill = Math.round(frac * width);
      process.stderr.write(`\r${label} ${p.stage.padEnd(8)} [${'#'.repeat(fill)}${'.'.repeat(width - fill)}] ${String(Math.round(frac * 100)).padStart(3)}% ${p.done}/${p.total}\x1b[K`);
      if (p.stage === 'ready') process.stderr.write('\n');
    } else if (p.stage !== lastStage || p.done === p.total) {
      if (p.done === p.total) process.stderr.write(`${label} ${p.stage}: ${p.done}/${p.total}\n`);
    }
    lastStage = p.stage;
  };
}

/** What a command needs from a loaded model: the engine and the answer parser for its coordinate convention. */
export interface LoadedForCli {
  engine: Engine;
  /** Boxes/points of an answer in original-image pixels (sizes of the image they refer to). */
  parseObjects: LoadedModelDir['parseObjects'];
}

/** The checkpoint's stored float type (config.json torch_dtype / dtype, top level or text_config), if it says. */
function storedDtype(dir: string): string | undefined {
  try {
    const c = readJsonFile(join(dir, 'config.json'))!;
    const text = (c['text_config'] ?? {}) as Record<string, unknown>;
    const d = c['torch_dtype'] ?? c['dtype'] ?? text['torch_dtype'] ?? text['dtype'];
    return typeof d === 'string' ? d : undefined;
  } catch {
    return undefined; // the loader reports a missing or broken config.json
  }
}

/**
 * --precision: 'auto' computes bf16-weight products (and attention) in bf16 on
 * AMX tiles when the checkpoint is stored in bf16 and the CPU has AMX-BF16 —
 * the arithmetic transformers uses for these checkpoints, 3–4× faster than
 * f32 here — and keeps f32 elsewhere (without AMX the vdpbf16ps path measured
 * slower than f32 FMA). An explicit SEEDVL_MATMUL_PRECISION is the default.
 */
export function choosePrecision(flag: string | undefined, dir: string | undefined): 'f32' | 'bf16' {
  const p = flag ?? process.env['SEEDVL_MATMUL_PRECISION'] ?? 'auto';
  if (p === 'f32' || p === 'bf16') return p;
  if (p !== 'auto') throw new UsageError(`--precision must be auto, f32 or bf16, got '${p}'`);
  return dir && native.cpu.amxBf16 && storedDtype(dir) === 'bfloat16' ? 'bf16' : 'f32';
}

export async function loadFromArgs(v: Values, quiet = false): Promise<LoadedForCli> {
  const s = (k: string) => v[k] as string | undefined;
  const threads = num(s('threads'), 'threads', { int: true, min: 1 });
  if (threads !== undefined) (await import('../tensor/index.ts')).setNumThreads(threads);
  const q = s('quantize');
  if (q !== undefined && q !== '4' && q !== '8') throw new UsageError(`--quantize must be 4 or 8, got '${q}'`);
  if (!s('model') === !s('preset')) throw new UsageError('give exactly one of --model DIR or --preset NAME');
  const maxBatch = num(s('max-batch'), 'max-batch', { int: true, min: 1, max: 64 }) ?? 4;
  const maxContext = s('max-context') ? num(s('max-context'), 'max-context', { int: true, min: 16 })! : undefined;
  const dir = s('model');
  const precision = choosePrecision(s('precision'), dir);
  setMatmulPrecision(precision);
  if (dir && detectModelDir(dir).kind === 'qwen_vl') {
    // Hugging Face Qwen-VL checkpoints: their own template, image processor and coordinate convention.
    if (!quiet) process.stderr.write(`loading ${dir} … (${precision} compute)\n`);
    const configFile = join(dir, 'config.json');
    const stored = parseQwenQuantConfig(readJsonFile(configFile)!, configFile);
    if (q && stored && Number(q) !== stored.bits) {
      throw new UsageError(`${dir} is already quantised to int${stored.bits} (seedvl quantize); --quantize ${q} cannot requantise it — load the unquantised checkpoint instead`);
    }
    const l = await loadModelDir(dir, { maxBatch, ...(maxContext ? { maxContext } : {}) });
    for (const w of l.warnings) process.stderr.write(`warning: ${w}\n`);
    if (q && stored) {
      if (!quiet) process.stderr.write(`note: ${dir} is stored as int${stored.bits} already; --quantize ${q} adds nothing\n`);
    } else if (q) {
      // Decoder Linear layers to int8/int4 from the stored bf16 weights (models/qwen_vl/quantize.ts says which).
      if (!(l.model instanceof QwenVLRuntime)) throw new Error(`${dir}: expected a Qwen-VL runtime to quantise`);
      const r = quantizeQwenModel(l.model.model, { bits: Number(q) as 4 | 8 });
      if (!quiet) {
        const groups = Object.entries(r.groupSizes).map(([g, n]) => `${n}×g${g}`).join(', ');
        process.stderr.write(`quantised ${r.layers} Linear layers to int${q} (${groups}): ${(r.floatBytes / 1e6).toFixed(1)} MB → ${(r.quantBytes / 1e6).toFixed(1)} MB; the router and the vision tower stay as stored\n`);
      }
      for (const p of r.skipped) process.stderr.write(`warning: ${p} left as stored (no group size of 32·k divides its input features)\n`);
    }
    const engine = new Engine(l.model, l.tokenizer, { maxBatch, template: l.template, vision: l.vision });
    return { engine, parseObjects: l.parseObjects };
  }
  const loaded = await loadGenerationModel({
    ...(dir ? { model: dir } : {}),
    ...(s('preset') ? { preset: s('preset') } : {}),
    ...(s('seed') ? { seed: num(s('seed'), 'seed', { int: true })! } : {}),
    ...(q ? { quantize: { bits: Number(q) as 4 | 8 } } : {}),
    ...(maxContext ? { maxContext } : {}),
    maxBatch,
    ...(quiet ? {} : { onProgress: progressBar('loading') }),
  });
  for (const w of loaded.warnings) process.stderr.write(`warning: ${w}\n`);
  if (loaded.randomWeights && !quiet) {
    process.stderr.write(`note: ${loaded.name} has RANDOM weights (a preset for testing); its answers are noise.\n`);
  }
  const engine = new Engine(loaded.model, loaded.tokenizer, { maxBatch, randomWeights: loaded.randomWeights });
  return { engine, parseObjects: seedParseObjects };
}
