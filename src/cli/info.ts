/**
 * `seedvl info`: parameter and FLOP accounting of a model configuration,
 * computed from the config alone (no weights are allocated, so the full-size
 * preset works anywhere).
 *
 *   seedvl info --preset seed1.5-vl [--json]
 *   seedvl info --config path/to/config.json|model_dir [--json]
 */
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { accountModel, imageFlops, nearestImageSide } from '../models/seed_vl/accounting.ts';
import { configFromString, type SeedVLConfig } from '../models/seed_vl/config.ts';
import { preset, PRESET_NAMES } from '../models/seed_vl/presets.ts';

const USAGE = `usage: seedvl info (--preset NAME | --config FILE_OR_DIR) [--json]
  presets: ${PRESET_NAMES.join(', ')}`;

interface InfoArgs {
  preset?: string;
  config?: string;
  json: boolean;
}

function parseArgs(argv: string[]): InfoArgs {
  const args: InfoArgs = { json: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined || v.startsWith('--')) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === '--json') args.json = true;
    else if (a === '--preset') args.preset = value();
    else if (a.startsWith('--preset=')) args.preset = a.slice('--preset='.length);
    else if (a === '--config') args.config = value();
    else if (a.startsWith('--config=')) args.config = a.slice('--config='.length);
    else if (a === '-h' || a === '--help') throw new Error('help');
    else throw new Error(`unknown argument '${a}'`);
  }
  if (!args.preset === !args.config) throw new Error('give exactly one of --preset or --config');
  return args;
}

async function loadConfig(path: string): Promise<SeedVLConfig> {
  const file = (await stat(path)).isDirectory() ? join(path, 'config.json') : path;
  return configFromString(await readFile(file, 'utf8'));
}

const fmtCount = (n: number): string => (n >= 1e9 ? `${(n / 1e9).toFixed(2)}B` : n >= 1e6 ? `${(n / 1e6).toFixed(2)}M` : `${(n / 1e3).toFixed(1)}K`);
const fmtFlops = (n: number): string => (n >= 1e12 ? `${(n / 1e12).toFixed(2)} TFLOP` : n >= 1e9 ? `${(n / 1e9).toFixed(2)} GFLOP` : `${(n / 1e6).toFixed(2)} MFLOP`);

function humanReport(name: string, cfg: SeedVLConfig): string {
  const a = accountModel(cfg);
  const v = cfg.vision;
  const l = cfg.language;
  const m = l.moe;
  const side = nearestImageSide(cfg, 1024);
  const img = imageFlops(cfg, side, side);
  const lines = [
    `model: ${name}`,
    `  Seed-ViT: ${v.numLayers} layers × ${v.hiddenSize} wide, ${v.numHeads} heads, patch ${v.patchSize}  — ${fmtCount(a.vision_params)} params`,
    `  adapter:  2×2 avg-pool → ${v.hiddenSize}→${cfg.adapter.hiddenSize}→${l.hiddenSize} MLP  — ${fmtCount(a.adapter_params)} params`,
    `  LLM:      ${l.numLayers} layers × ${l.hiddenSize} wide, ${l.numHeads}q/${l.numKvHeads}kv heads × ${l.headDim}, vocab ${l.vocabSize}` +
      (m ? `, MoE ${m.numExperts} experts top-${m.numExpertsPerTok} (${m.scoringFunc}), ${m.numSharedExperts} shared` : ', dense') +
      `  — ${fmtCount(a.language_params_total)} total / ${fmtCount(a.language_params_active)} active`,
    `  total:    ${fmtCount(a.total_params)} params, ${fmtCount(a.active_params)} active per token`,
    `  FLOPs per text token (forward, 2×active matmul weights): ${fmtFlops(a.flops_per_token)}`,
    `  1024×1024 image → ${side}×${side} px, ${img.patches} patches, ${img.llmTokens} LLM tokens: ViT ${fmtFlops(img.vision)}, adapter ${fmtFlops(img.adapter)}`,
  ];
  return lines.join('\n') + '\n';
}

/** Runs `seedvl info`; prints to stdout, returns the exit code. */
export async function infoCommand(argv: string[]): Promise<number> {
  let args: InfoArgs;
  try {
    args = parseArgs(argv);
  } catch (e) {
    const msg = (e as Error).message;
    process.stderr.write(msg === 'help' ? `${USAGE}\n` : `seedvl info: ${msg}\n${USAGE}\n`);
    return msg === 'help' ? 0 : 2;
  }
  let cfg: SeedVLConfig;
  let name: string;
  try {
    cfg = args.preset ? preset(args.preset) : await loadConfig(args.config!);
    name = args.preset ?? args.config!;
  } catch (e) {
    process.stderr.write(`seedvl info: ${(e as Error).message}\n`);
    return 1;
  }
  if (args.json) process.stdout.write(JSON.stringify({ preset: name, ...accountModel(cfg) }) + '\n');
  else process.stdout.write(humanReport(name, cfg));
  return 0;
}
