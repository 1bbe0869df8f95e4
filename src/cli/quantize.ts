/**
 * `seedvl quantize <in-dir> <out-dir> --bits 4|8`: writes a copy of a model
 * directory with its language-model Linear weights quantised (int8 or int4,
 * group-wise f16 scales). With --eval, reports the accuracy cost: logit
 * difference and greedy agreement of the quantised model against the input.
 */
import { quantizeCheckpoint } from '../generation/quant_checkpoint.ts';
import { defaultGroupSize } from '../generation/quantize_model.ts';
import { loadGenerationModel } from '../generation/loader.ts';
import { compareModels } from '../generation/quant_accuracy.ts';
import { parse, num, UsageError, progressBar } from './model_args.ts';
import { detectModelDir } from '../models/registry.ts';

const HELP = `usage: seedvl quantize <in-dir> <out-dir> --bits 4|8 [--group N] [--overwrite] [--eval]

  --bits 4|8       weight bits (int8: scale = absmax/127; int4: GGML Q4_0 rule)
  --group N        weights per f16 scale along the input dim (default 32 for int4, 128 for int8)
  --overwrite      replace <out-dir> if it exists
  --eval           compare the result with the input model (logits, greedy agreement)
  --json           print the report as JSON`;

export async function quantizeCommand(argv: string[]): Promise<number> {
  let a;
  let bits: 4 | 8;
  let group: number;
  try {
    a = parse(argv, { bits: { type: 'string' }, group: { type: 'string' }, overwrite: { type: 'boolean' }, eval: { type: 'boolean' }, json: { type: 'boolean' } });
    if (a.values.help) {
      console.log(HELP);
      return 0;
    }
    if (a.positionals.length !== 2) throw new UsageError('give <in-dir> and <out-dir>');
    if (a.values.bits !== '4' && a.values.bits !== '8') throw new UsageError(`--bits must be 4 or 8, got '${a.values.bits ?? ''}'`);
    bits = Number(a.values.bits) as 4 | 8;
    group = num(a.values.group, 'group', { int: true, min: 32 }) ?? defaultGroupSize(bits);
    if (group % 32 !== 0) throw new UsageError(`--group must be a multiple of 32, got ${group}`);
  } catch (e) {
    console.error(`seedvl quantize: ${(e as Error).message}\n\n${HELP}`);
    return 2;
  }
  const [inDir, outDir] = a.positionals as [string, string];
  try {
    if (detectModelDir(inDir).kind === 'qwen_vl') {
      // The Qwen-VL loader (models/qwen_vl/weights.ts) reads Hub safetensors names only; it has no reader
      // for quant.json + .qweight/.scales yet, so a written copy could not be loaded back.
      throw new Error(`${inDir} is a Hugging Face Qwen-VL checkpoint: writing a quantised copy is not supported yet `
        + `(the Qwen-VL loader cannot read quantised weights); quantise at load instead: seedvl run --model ${inDir} --quantize ${bits}`);
    }
    const bar = a.values.json ? undefined : progressBar('quantizing');
    const r = quantizeCheckpoint(inDir, outDir, { bits, groupSize: group, overwrite: !!a.values.overwrite },
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
