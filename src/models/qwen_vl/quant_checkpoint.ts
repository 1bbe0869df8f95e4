/**
 * `seedvl quantize` for Hugging Face Qwen-VL directories: writes a copy that
 * is still a Hub-style model directory — config.json with a
 * `quantization_config` block (quant_config.ts), the tokenizer / processor /
 * generation files copied, safetensors shards (+ index when sharded) written
 * atomically — where each quantised Linear weight `<m>.weight` is replaced by
 * `<m>.qweight` + `<m>.scales`, and every other tensor is copied unchanged
 * (bf16 stays bf16). A layer's fused MoE experts `<m>` ([E, in, 2I] gate/up,
 * [E, I, out] down) become `<m>.qweight` [E, rows, packed in] + `<m>.scales`
 * [E, rows, in/G], each expert's quantised [out, in] rows stacked (gate rows
 * then up rows) so that loading hands out per-expert views.
 *
 * Which layers, and each layer's group size, come from the at-load rule
 * (quantize.ts planQwenQuantization) applied to the model built from the
 * input directory, so a directory written here loads to exactly the model
 * `--quantize` would make at load.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { openCheckpoint, writeCheckpoint } from '../../io/index.ts';
import type { Tensor } from '../../tensor/index.ts';
import { tidy, empty } from '../../tensor/index.ts';
import { bytesOf } from '../../tensor/dtype.ts';
import { quantizeWeight, disposeQuantized, type QuantBits, type QuantizedWeight } from '../../tensor/ops/quant.ts';
import { parseQwenConfig } from './config.ts';
import { readJsonFile } from './load.ts';
import { WeightStore, readerSource } from './weights.ts';
import { buildQwenModel } from './build.ts';
import { planQwenQuantization } from './quantize.ts';
import { QWEN_QUANT_METHOD, type QwenQuantConfig } from './quant_config.ts';
import type { QwenVLModel } from './model.ts';

export interface QwenQuantizeCheckpointOptions {
  bits: QuantBits;
  /** Weights per scale (default 32 for int4, 128 for int8); smaller where a layer's width needs it. */
  groupSize?: number;
  /** Replace a non-empty `outDir`. */
  force?: boolean;
  /** Largest shard (bytes); default: the input's largest shard when it is sharded, else writeCheckpoint's default. */
  maxShardBytes?: number;
  onProgress?: (stage: 'load' | 'quantize' | 'write' | 'ready', done: number, total: number) => void;
}

export interface QwenQuantizeCheckpointReport {
  dir: string;
  bits: QuantBits;
  groupSize: number;
  /** Quantised Linear layers, and those left in float because no group size fits them. */
  layers: number;
  skipped: string[];
  groupSizes: Record<number, number>;
  tensorsCopied: number;
  /** Bytes of the tensors read, and written. */
  bytesIn: number;
  bytesOut: number;
  files: string[];
}

/** Files never copied: the weights and config.json are written anew. */
const isWeightFile = (f: string): boolean => /\.safetensors$|\.safetensors\.index\.json$|^config\.json$/.test(f);

function checkOutDir(inDir: string, outDir: string, force: boolean): boolean {
  if (outDir === inDir) throw new Error(`${outDir}: the output directory must differ from the input directory`);
  if (!existsSync(outDir)) return false;
  if (!statSync(outDir).isDirectory()) throw new Error(`${outDir}: exists and is not a directory`);
  if (readdirSync(outDir).length && !force) throw new Error(`${outDir}: exists and is not empty (pass --force to replace it)`);
  return true;
}

/** The other files of the input directory (tokenizer, processors, generation and chat templates, …), byte for byte. */
function companionFiles(inDir: string): Record<string, Uint8Array> {
  const files: Record<string, Uint8Array> = {};
  for (const f of readdirSync(inDir).sort()) {
    if (f.startsWith('.') || isWeightFile(f) || !statSync(join(inDir, f)).isFile()) continue;
    files[f] = readFileSync(join(inDir, f));
  }
  return files;
}

/** The input's largest shard in bytes when it is sharded (so the output is sharded like it), else undefined. */
function inputShardBytes(inDir: string): number | undefined {
  const index = join(inDir, 'model.safetensors.index.json');
  if (!existsSync(index)) return undefined;
  const map = (readJsonFile(index)!['weight_map'] ?? {}) as Record<string, string>;
  const sizes = [...new Set(Object.values(map))].map((f) => (existsSync(join(inDir, f)) ? statSync(join(inDir, f)).size : 0));
  const max = Math.max(0, ...sizes);
  return max > 0 ? max : undefined;
}

/** Quantises the decoder Linears of the Qwen-VL directory `inDir` into the new directory `outDir`. */
export function quantizeQwenCheckpoint(inDirIn: string, outDirIn: string, opts: QwenQuantizeCheckpointOptions): QwenQuantizeCheckpointReport {
  const inDir = resolve(inDirIn), outDir = resolve(outDirIn);
  const want = opts.groupSize ?? (opts.bits === 4 ? 32 : 128);
  if (opts.bits !== 4 && opts.bits !== 8) throw new RangeError(`quantize: bits must be 4 or 8, got ${String(opts.bits)}`);
  const cfgFile = join(inDir, 'config.json');
  const json = readJsonFile(cfgFile)!;
  const config = parseQwenConfig(json, cfgFile);
  if (json['quantization_config'] !== undefined) {
    const method = (json['quantization_config'] as Record<string, unknown> | null)?.['quant_method'];
    throw new Error(`${cfgFile}: the checkpoint is already quantised (quantization_config, quant_method ${JSON.stringify(method ?? null)}); quantise the original bf16 checkpoint instead`);
  }
  const replace = checkOutDir(inDir, outDir, opts.force ?? false);
  const progress = opts.onProgress;

  const reader = openCheckpoint(inDir);
  const quantized = new Map<string, QuantizedWeight>(); // Hub module → packed weight
  const experts = new Map<string, QuantizedWeight[]>();   // fused Hub expert tensor → packed weights (gate, up per expert, or down)
  const packedOut: Tensor[] = [];                         // the stacked expert tensors written
  const fusedModules: string[] = [];
  const outTensors = new Map<string, Tensor>();
  let model: QwenVLModel | null = null;
  try {
    progress?.('load', 0, 1);
    const store = new WeightStore(readerSource(reader), { numExperts: config.text.moe?.numExperts ?? 0 });
    model = buildQwenModel(config, store); // checks every tensor against config.json
    progress?.('load', 1, 1);
    const plan = planQwenQuantization(model, { bits: opts.bits, groupSize: want });
    const report: QwenQuantizeCheckpointReport = {
      dir: outDir, bits: opts.bits, groupSize: want, layers: 0, skipped: plan.skipped, groupSizes: {},
      tensorsCopied: 0, bytesIn: 0, bytesOut: 0, files: [],
    };
    for (const { path, linear, groupSize } of plan.layers) {
      const ref = store.refs.get(`language.${path}.weight`);
      const qw = tidy(() => quantizeWeight(linear.weight, opts.bits, groupSize));
      if (ref && (ref.kind === 'gate_up' || ref.kind === 'down')) {
        let parts = experts.get(ref.hub);
        if (!parts) experts.set(ref.hub, (parts = []));
        parts[ref.kind === 'down' ? ref.expert : 2 * ref.expert + ref.half] = qw;
      } else {
        if (!ref || ref.kind !== 'plain' || !ref.hub.endsWith('.weight')) {
          disposeQuantized(qw);
          throw new Error(`quantize: no Hub tensor for language.${path}.weight`);
        }
        quantized.set(ref.hub.slice(0, -'.weight'.length), qw);
      }
      report.groupSizes[groupSize] = (report.groupSizes[groupSize] ?? 0) + 1;
      report.layers++;
      progress?.('quantize', report.layers, plan.layers.length);
    }
    for (const name of reader.names()) {
      const t = reader.get(name);
      report.bytesIn += t.size * bytesOf(t.dtype);
      const parts = experts.get(name);
      const m = name.endsWith('.weight') ? quantized.get(name.slice(0, -'.weight'.length)) : undefined;
      if (parts) {
        t.dispose();
        const per = name.endsWith('gate_up_proj') ? 2 : 1;  // gate and up rows per expert
        const q = stackExperts(parts.map((p) => p.q), per, name, 'qweight'), sc = stackExperts(parts.map((p) => p.scales), per, name, 'scales');
        packedOut.push(q, sc);
        outTensors.set(`${name}.qweight`, q);
        outTensors.set(`${name}.scales`, sc);
        fusedModules.push(name);
        report.bytesOut += q.size + sc.size * 2;
      } else if (m) {
        t.dispose();
        const mod = name.slice(0, -'.weight'.length);
        outTensors.set(`${mod}.qweight`, m.q);
        outTensors.set(`${mod}.scales`, m.scales);
        report.bytesOut += m.q.size + m.scales.size * 2;
      } else {
        outTensors.set(name, t);
        report.tensorsCopied++;
        report.bytesOut += t.size * bytesOf(t.dtype);
      }
    }
    for (const hub of experts.keys()) if (!fusedModules.includes(hub)) throw new Error(`quantize: fused experts '${hub}' are not in the input's tensors`);
    const qc: QwenQuantConfig = { quant_method: QWEN_QUANT_METHOD, bits: opts.bits, group_size: want, modules: [...quantized.keys(), ...fusedModules] };
    const shardBytes = opts.maxShardBytes ?? inputShardBytes(inDir);
    progress?.('write', 0, 1);
    const written = writeCheckpoint(outDir, outTensors, {
      config: { ...json, quantization_config: qc }, files: companionFiles(inDir), overwrite: replace,
      ...(shardBytes ? { maxShardBytes: shardBytes } : {}),
    });
    report.files = written.files;
    progress?.('write', 1, 1);
    progress?.('ready', 1, 1);
    return report;
  } finally {
    for (const [name, t] of outTensors) if (!name.endsWith('.qweight') && !name.endsWith('.scales')) t.dispose();
    for (const qw of quantized.values()) disposeQuantized(qw);
    for (const parts of experts.values()) for (const qw of parts) if (qw) disposeQuantized(qw);
    for (const t of packedOut) t.dispose();
    model?.dispose();
    reader.close();
  }
}

/** Stacks packed tensors (each [rows, cols], contiguous, one dtype; `per` of them per expert) into [experts, per·rows, cols]. */
function stackExperts(parts: readonly (Tensor | undefined)[], per: number, hub: string, what: string): Tensor {
  const first = parts[0];
  if (!first || parts.some((p) => !p || p.dtype !== first.dtype || p.shape[0] !== first.shape[0] || p.shape[1] !== first.shape[1])) {
    throw new Error(`quantize: the experts of '${hub}' did not all quantise alike (${what})`);
  }
  if (parts.length % per !== 0) throw new Error(`quantize: the experts of '${hub}' are missing a ${what} part`);
  const out = empty([parts.length / per, per * first.shape[0]!, first.shape[1]!], first.dtype);
  const dst = new Uint8Array(out.data<Uint8Array>().buffer, out.data<Uint8Array>().byteOffset, out.size * bytesOf(out.dtype));
  const each = first.size * bytesOf(first.dtype);
  parts.forEach((p, i) => {
    const src = p!.data<Uint8Array>();
    dst.set(new Uint8Array(src.buffer, src.byteOffset, each), i * each);
  });
  return out;
}
