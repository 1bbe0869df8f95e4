/**
 * `seedvl quantize <in-dir> <out-dir> --bits 4|8`: writes a copy of a model
 * directory with its language-model Linear weights quantised (int8 or int4,
 * group-wise f16 scales). Seed checkpoints: generation/quant_checkpoint.ts;
 * Hugging Face Qwen-VL directories: models/qwen_vl/quant_checkpoint.ts (a
 * Hub-style directory with quantization_config in config.json). With --eval
 * (Seed checkpoints), reports the accuracy cost: logit difference and greedy
 * agreement of the quantised model against the input.
 */
import { quantizeCheckpoint } from '../generation/quant_checkpoint.ts';
import { defaultGroupSize } from '../generation/quantize_model.ts';
import { loadGenerationModel } from '../generation/loader.ts';
import { compareModels } from '../generation/quant_accuracy.ts';
import { parse, num, UsageError, progressBar } from './model_args.ts';
import { detectModelDir } from '../models/registry.ts';
import { quantizeQwenCheckpoint } from '../models/qwen_vl/quant_checkpoint.ts';

const HELP = `usage: seedvl quantize <in-dir> <out-dir> --bits 4|8 [--group-size N] [--force] [--eval]

  <in-dir> is a seedvl checkpoint or a Hugging Face Qwen2-VL / Qwen2.5-VL /
  Qwen3-VL / Qwen3-VL-MoE directory. A Qwen directory is written as a Hub-style
  directory (config.json gains a quantization_config block; quantised Linear
  weights are stored as <name>.qweight + <name>.scales, the rest unchanged);
  seedvl run --model <out-dir> loads it without re-quantising.

  --bits 4|8             weight bits (int8: scale = absmax/127; int4: GGML Q4_0 rule)
  --group-size N         weights per f16 scale along the input dim (default 32 for int4,
                         128 for int8; a multiple of 32). Alias: --group
  --force                replace <out-dir> if it exists and is not empty. Alias: --overwrite
  --eval                 compare the result with the input model (logits, greedy agreement;
                         seedvl checkpoints only)
  --json                 print the report as JSON`;

export async function quantizeCommand(argv: string[]): Promise<number> {
  let a;
  let bits: 4 | 8;
  let group: number;
  try {
    a = parse(argv, {
      bits: { type: 'string' }, group: { type: 'string' }, 'group-size': { type: 'string' },
      overwrite: { type: 'boolean' }, force: { type: 'boolean' }, eval: { type: 'boolean' }, json: { type: 'boolean' },
    });
    if (a.values.help) {
      console.log(HELP);
      return 0;
    }
    if (a.positionals.length !== 2) throw new UsageError('give <in-dir> and <out-dir>');
    if (a.values.bits !== '4' && a.values.bits !== '8') throw new UsageError(`--bits must be 4 or 8, got '${a.values.bits ?? ''}'`);
    bits = Number(a.values.bits) as 4 | 8;
    if (a.values.group !== undefined && a.values['group-size'] !== undefined) throw new UsageError('give --group-size or --group, not both');
    group = num(a.values['group-size'] ?? a.values.group, 'group-size', { int: true, min: 32 }) ?? defaultGroupSize(bits);
    if (group % 32 !== 0) throw new UsageError(`--group-size must be a multiple of 32, got ${group}`);
  } catch (e) {
    console.error(`seedvl quantize: ${(e as Error).message}\n\n${HELP}`);
    return 2;
  }
  const [inDir, outDir] = a.positionals as [string, string];
  const force = !!(a.values.force || a.values.overwrite);
  try {
    if (detectModelDir(inDir).kind === 'qwen_vl') return qwenQuantize(inDir, outDir, bits, group, force, a.values);
    const bar = a.values.json ? undefined : progressBar('quantizing');
    const r = quantizeCheckpoint(inDir, outDir, { bits, groupSize: group, overwrite: force },
      bar ? (done, total) => bar({ stage: done === total ? 'ready' : 'weights', done, total }) : undefined);
    const report: Record<string, unknown> = {
      out: outDir, bits, group_size: group, quantized_tensors: r.quantized, copied_tensors: r.copied,
      bytes_in: r.bytesIn, bytes_out: r.bytesOut, ratio: +(r.bytesOut / r.bytesIn).toFixed(4),
    };
    if (a.values.eval) {
      const ref = await loadGenerationModel({ model: inDir, maxBatch: 1, maxContext: 512 });
      const q = await loadGenerationModel({ model: outDir, maxBatch: 1, maxContext: 512 });
      try {
        report.accuracy = compareModels(ref.model, q.model, ref.tokenizer, { steps: 32 });
      } finally {
        ref.model.dispose?.();
        q.model.dispose?.();
      }
    }
    if (a.values.json) console.log(JSON.stringify(report));
    else {
      console.log(`wrote ${outDir}: ${r.quantized} tensors quantised to int${bits} (group ${group}), ${r.copied} copied; ${(r.bytesIn / 1e6).toFixed(1)} MB → ${(r.bytesOut / 1e6).toFixed(1)} MB`);
      if (report.accuracy) console.log(`accuracy vs input: ${JSON.stringify(report.accuracy)}`);
    }
    return 0;
  } catch (e) {
    console.error(`seedvl quantize: ${(e as Error).message}`);
    return 1;
  }
}

/** A Hugging Face Qwen-VL directory → a quantised Hub-style directory. */
function qwenQuantize(inDir: string, outDir: string, bits: 4 | 8, group: number, force: boolean, v: Record<string, unknown>): number {
  if (v.eval) {
    console.error('seedvl quantize: --eval compares seedvl checkpoints only; for Qwen-VL see the measured int8/int4 cost in docs/generation.md (src/generation/quant_accuracy_qwen_main.ts)');
    return 2;
  }
  const bar = v.json ? undefined : progressBar('quantizing');
  const stages = { load: 'build', quantize: 'quantize', write: 'weights', ready: 'ready' } as const;
  const r = quantizeQwenCheckpoint(inDir, outDir, {
    bits, groupSize: group, force,
    ...(bar ? { onProgress: (stage: keyof typeof stages, done: number, total: number) => bar({ stage: stages[stage], done, total }) } : {}),
  });
  const report = {
    out: r.dir, bits, group_size: group, quantized_layers: r.layers, group_sizes: r.groupSizes, skipped_layers: r.skipped,
    copied_tensors: r.tensorsCopied, bytes_in: r.bytesIn, bytes_out: r.bytesOut, ratio: +(r.bytesOut / r.bytesIn).toFixed(4), files: r.files,
  };
  if (v.json) console.log(JSON.stringify(report));
  else {
    const sizes = Object.entries(r.groupSizes).map(([g, n]) => `${n} × group ${g}`).join(', ');
    console.log(`wrote ${r.dir}: ${r.layers} Linear layers quantised to int${bits} (${sizes || 'none'}), ${r.tensorsCopied} tensors copied; `
      + `${(r.bytesIn / 1e6).toFixed(1)} MB → ${(r.bytesOut / 1e6).toFixed(1)} MB`);
    if (r.skipped.length) console.log(`left in float (no group size divides their width): ${r.skipped.join(', ')}`);
  }
  return 0;
}
