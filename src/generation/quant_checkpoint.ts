/**
 * Quantised checkpoint directories: the same layout as a float checkpoint
 * (config.json unchanged, shards + index), where every quantised Linear weight
 * `X.weight` is stored as `X.weight.qweight` (int8 [N, K] or uint8 [N, K/2]) and
 * `X.weight.scales` (float16 [N, K/G]), and `quantization.json` says so:
 *   { "format": "seedvl-weight-only", "bits": 4, "group_size": 32, "weights": { "X.weight": [N, K], … } }
 * Everything else (embeddings, norms, vision, router) is copied unchanged.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { openCheckpoint, writeCheckpoint, type CheckpointReader } from '../io/index.ts';
import type { Tensor } from '../tensor/index.ts';
import { tidy } from '../tensor/index.ts';
import { quantizeWeight, quantizedWeightFrom, type QuantBits, type QuantizedWeight } from '../tensor/ops/quant.ts';
import { defaultGroupSize, isQuantizableWeight, type QuantizeSpec } from './quantize_model.ts';

export const QUANT_FILE = 'quantization.json';
export const QUANT_FORMAT = 'seedvl-weight-only';

export interface QuantManifest {
  format: typeof QUANT_FORMAT;
  bits: QuantBits;
  group_size: number;
  weights: Record<string, [number, number]>;
}

export interface QuantizeCheckpointReport {
  quantized: number;
  copied: number;
  bytesIn: number;
  bytesOut: number;
  dir: string;
}

/** Reads a directory's quantization.json (null when the checkpoint is not quantised). */
export function readQuantManifest(dir: string): QuantManifest | null {
  const p = join(dir, QUANT_FILE);
  if (!existsSync(p)) return null;
  const m = JSON.parse(readFileSync(p, 'utf8')) as QuantManifest;
  if (m.format !== QUANT_FORMAT || (m.bits !== 4 && m.bits !== 8) || !Number.isInteger(m.group_size) || typeof m.weights !== 'object') {
    throw new Error(`${p}: not a ${QUANT_FORMAT} manifest (format, bits 4|8, group_size, weights)`);
  }
  return m;
}

/** Rebuilds the quantised weights named in the manifest from a reader. */
export function readQuantizedWeights(reader: CheckpointReader, m: QuantManifest): Map<string, QuantizedWeight> {
  const out = new Map<string, QuantizedWeight>();
  for (const [name, shape] of Object.entries(m.weights)) {
    out.set(name, quantizedWeightFrom(reader.get(`${name}.qweight`), reader.get(`${name}.scales`), m.bits, m.group_size, shape));
  }
  return out;
}

/**
 * `seedvl quantize`: writes `outDir` with the Linear weights of `inDir`
 * quantised. Progress is reported per tensor.
 */
export function quantizeCheckpoint(inDir: string, outDir: string, spec: QuantizeSpec & { overwrite?: boolean },
  onProgress?: (done: number, total: number, name: string) => void): QuantizeCheckpointReport {
  const G = spec.groupSize ?? defaultGroupSize(spec.bits);
  const reader = openCheckpoint(inDir);
  if (readQuantManifest(inDir)) throw new Error(`${inDir} is already quantised (${QUANT_FILE} present)`);
  const tensors = new Map<string, Tensor>();
  const manifest: QuantManifest = { format: QUANT_FORMAT, bits: spec.bits, group_size: G, weights: {} };
  const report: QuantizeCheckpointReport = { quantized: 0, copied: 0, bytesIn: 0, bytesOut: 0, dir: outDir };
  const names = reader.names();
  try {
    names.forEach((name, i) => {
      const info = reader.info(name);
      const t = reader.get(name);
      report.bytesIn += t.storage.nbytes;
      if ((t.dtype === 'float32' || t.dtype === 'bfloat16') && isQuantizableWeight(name, info.shape, G)) {
        const qw = tidy(() => quantizeWeight(t, spec.bits, G));
        t.dispose();
        tensors.set(`${name}.qweight`, qw.q);
        tensors.set(`${name}.scales`, qw.scales);
        manifest.weights[name] = [qw.shape[0], qw.shape[1]];
        report.quantized++;
        report.bytesOut += qw.q.size + qw.scales.size * 2;
      } else {
        tensors.set(name, t);
        report.copied++;
        report.bytesOut += t.storage.nbytes;
      }
      onProgress?.(i + 1, names.length, name);
    });
    const files: Record<string, string> = { [QUANT_FILE]: JSON.stringify(manifest, null, 1) + '\n' };
    for (const f of ['tokenizer.json', 'tokenizer_config.json', 'generation_config.json']) {
      if (existsSync(join(inDir, f))) files[f] = readFileSync(join(inDir, f), 'utf8');
    }
    writeCheckpoint(outDir, tensors, { config: reader.config ?? undefined, files, overwrite: spec.overwrite ?? false });
    return report;
  } finally {
    for (const t of tensors.values()) t.dispose();
    reader.close();
  }
}
