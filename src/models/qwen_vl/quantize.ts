/**
 * Weight-only int8/int4 quantisation of a loaded Qwen-VL model (from its bf16
 * or f32 weights, at load time). Which layers — the decoder's Linear layers,
 * the weights decode streams from memory for every token:
 *   - attention q/k/v/o projections (their biases stay float32);
 *   - dense SwiGLU gate/up/down projections (Qwen2-VL, Qwen2.5-VL, Qwen3-VL);
 *   - routed experts of Qwen3-VL-MoE (each expert's gate/up/down; they run one
 *     quantised SwiGLU per expert, nn/moe.ts) — the bulk of that model: ~60 GB
 *     of bf16 experts become ~16 GB at int4;
 *   - lm_head when it is its own matrix (untied). A tied head is the
 *     embedding table, read by row for embeddings, and stays as stored.
 * Not quantised:
 *   - the MoE router (small, and its logits pick the experts);
 *   - the vision tower: compute-bound and run once per image (as for Seed).
 *
 * Group size: the requested one (default 32 for int4, 128 for int8) when it
 * divides the layer's input features, else the largest multiple of 32 below
 * it that does (e.g. 64 for a hidden size of 64); a layer with none is left
 * as stored and counted in `skipped`.
 */
import { Linear } from '../../nn/linear.ts';
import { quantizeWeight, quantizedBytes, type QuantBits } from '../../tensor/ops/quant.ts';
import type { QwenVLModel } from './model.ts';

export interface QwenQuantizeSpec {
  bits: QuantBits;
  /** Weights per scale along the input dim (default 32 for int4, 128 for int8). */
  groupSize?: number;
}

export interface QwenQuantizeReport {
  bits: QuantBits;
  layers: number;
  /** Layers quantisable by name but with no group size dividing their input features. */
  skipped: string[];
  /** Group sizes used → number of layers. */
  groupSizes: Record<number, number>;
  /** Bytes of the replaced float weights, and of their quantised form. */
  floatBytes: number;
  quantBytes: number;
}

/** Decoder module paths (relative to `model.language`) whose Linear is quantised. */
export function isQwenQuantizableLinear(path: string): boolean {
  return /^layers\.\d+\.(self_attn\.[qkvo]_proj|mlp\.(gate|up|down)_proj|mlp\.shared_experts\.(gate|up|down)_proj|mlp\.experts\.\d+\.(gate|up|down)_proj)$/.test(path) || path === 'lm_head';
}

/** The group size used for input width K: `want` if it divides K, else the largest multiple of 32 below it that does (0: none). */
export function qwenGroupSizeFor(K: number, want: number): number {
  for (let g = want; g >= 32; g -= 32) if (K % g === 0) return g;
  return 0;
}

export interface QwenQuantizePlanEntry {
  /** Module path relative to `model.language` (e.g. `layers.0.self_attn.q_proj`). */
  path: string;
  linear: Linear;
  groupSize: number;
}

/** Which Linear layers quantizeQwenModel would quantise, with their group sizes (the one rule for at-load and on-disk quantisation). */
export function planQwenQuantization(model: QwenVLModel, spec: QwenQuantizeSpec): { layers: QwenQuantizePlanEntry[]; skipped: string[] } {
  const want = spec.groupSize ?? (spec.bits === 4 ? 32 : 128);
  if (!Number.isInteger(want) || want < 32 || want % 32 !== 0) throw new RangeError(`quantizeQwenModel: groupSize must be a positive multiple of 32, got ${want}`);
  const layers: QwenQuantizePlanEntry[] = [];
  const skipped: string[] = [];
  for (const [path, m] of model.language.namedModules()) {
    if (!(m instanceof Linear) || m.quantized || !isQwenQuantizableLinear(path)) continue;
    const g = qwenGroupSizeFor(m.weight.shape[1]!, want);
    if (g) layers.push({ path, linear: m, groupSize: g });
    else skipped.push(path);
  }
  return { layers, skipped };
}

/** Quantises the decoder's Linear layers in place (see the file comment for which); `onLayer` reports progress. */
export function quantizeQwenModel(model: QwenVLModel, spec: QwenQuantizeSpec, onLayer?: (done: number, total: number, path: string) => void): QwenQuantizeReport {
  const plan = planQwenQuantization(model, spec);
  const r: QwenQuantizeReport = { bits: spec.bits, layers: 0, skipped: plan.skipped, groupSizes: {}, floatBytes: 0, quantBytes: 0 };
  for (const { path, linear: m, groupSize: g } of plan.layers) {
    const qw = quantizeWeight(m.weight, spec.bits, g);
    r.floatBytes += m.weight.size * (m.weight.dtype === 'float32' ? 4 : 2);
    r.quantBytes += quantizedBytes(qw);
    m.setQuantized(qw); // frees the float weight (for mmapped bf16, a view: the file mapping stays)
    r.groupSizes[g] = (r.groupSizes[g] ?? 0) + 1;
    r.layers++;
    onLayer?.(r.layers, plan.layers.length, path);
  }
  return r;
}
