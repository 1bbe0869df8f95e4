/**
 * Weight-only quantisation of a model's Linear layers for inference. Which
 * layers: the language model's Linear weights (attention projections, dense
 * and shared-expert SwiGLUs, the output head) — they are what decode streams
 * from memory for every token. Embeddings, norms, the MoE router and stacked
 * expert tensors stay as they are; so does the vision encoder (compute-bound,
 * run once per image).
 *
 * Routed MoE experts are not quantised: the MoE reads their weights directly
 * for its grouped GEMM (a grouped quantised kernel would be needed).
 *
 * A quantised Linear keeps its module and bias; its forward runs
 * `quantLinear` (`Linear.quantized`) and its float weight is freed.
 */
import { Linear } from '../nn/linear.ts';
import type { Module } from '../nn/module.ts';
import type { Tensor } from '../tensor/index.ts';
import { quantizeWeight, quantLinear, quantizedBytes, disposeQuantized, type QuantBits, type QuantizedWeight } from '../tensor/ops/quant.ts';

export interface QuantizeSpec {
  bits: QuantBits;
  /** Weights per scale along the input dim (default 32 for int4, 128 for int8). */
  groupSize?: number;
}

export const defaultGroupSize = (bits: QuantBits): number => (bits === 4 ? 32 : 128);

/** Checkpoint tensor names that hold quantisable Linear weights (by name and shape, no model needed). */
export function isQuantizableWeight(name: string, shape: readonly number[], groupSize: number): boolean {
  if (shape.length !== 2 || shape[1]! % groupSize !== 0) return false;
  // Routed experts run through the grouped GEMM (their weights are read directly, not via Linear.forward).
  if (/\.experts\.\d+\./.test(name)) return false;
  return /^language\.(layers\.\d+\..*_proj|lm_head)\.weight$/.test(name);
}

/** The quantised weight a Linear runs with, if any. */
export function quantizedWeightOf(lin: Linear): QuantizedWeight | undefined {
  return lin.quantized ?? undefined;
}

/** Makes `lin` run with `qw` and frees its float weight. */
export function installQuantized(lin: Linear, qw: QuantizedWeight): void {
  lin.setQuantized(qw);
}

/** Frees the quantised weights of every Linear under `model` (Module.dispose does not know them). */
export function releaseQuantized(model: Module): void {
  for (const [, m] of model.namedModules()) {
    if (!(m instanceof Linear)) continue;
    if (m.quantized) {
      disposeQuantized(m.quantized);
      m.quantized = null;
    }
  }
}

export interface QuantizeReport {
  layers: number;
  /** Bytes of the float weights replaced, and of their quantised form. */
  floatBytes: number;
  quantBytes: number;
}

/** Quantises the model's Linear layers in place (see the file comment for which). */
export function quantizeModel(model: Module, spec: QuantizeSpec): QuantizeReport {
  const G = spec.groupSize ?? defaultGroupSize(spec.bits);
  const report: QuantizeReport = { layers: 0, floatBytes: 0, quantBytes: 0 };
  for (const [path, m] of model.namedModules()) {
    if (!(m instanceof Linear) || m.quantized) continue;
    if (!isQuantizableWeight(`${path}.weight`, m.weight.shape, G)) continue;
    const qw = quantizeWeight(m.weight, spec.bits, G);
    report.floatBytes += m.weight.size * (m.weight.dtype === 'bfloat16' ? 2 : 4);
    report.quantBytes += quantizedBytes(qw);
    installQuantized(m, qw);
    report.layers++;
  }
  return report;
}
