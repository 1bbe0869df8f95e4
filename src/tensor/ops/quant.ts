/**
 * Weight-only quantised Linear weights (format in native/src/quant.h): int8 or
 * int4 values with one float16 scale per group of `groupSize` weights along the
 * input dimension. Activations and accumulation stay float32. Inference only:
 * no gradient is recorded (quantised weights are not trained).
 */
import { Tensor, empty, contiguousCopy, numelOf } from '../tensor.ts';
import { kernels } from '../native.ts';
import { DTYPE_CODE } from '../tensor.ts';

export type QuantBits = 4 | 8;

/** A quantised [N, K] Linear weight. */
export interface QuantizedWeight {
  readonly bits: QuantBits;
  readonly groupSize: number;
  /** [N, K]: output and input features. */
  readonly shape: readonly [number, number];
  /** int8 [N, K] (bits 8) or uint8 [N, K/2] (bits 4, two weights per byte). */
  readonly q: Tensor;
  /** float16 [N, K / groupSize]. */
  readonly scales: Tensor;
}

interface QuantKernels {
  quantizeWeights(bits: number, G: number, w: Uint8Array, wDt: number, N: number, K: number, q: Uint8Array, scales: Uint16Array): void;
  dequantizeWeights(bits: number, G: number, q: Uint8Array, scales: Uint16Array, N: number, K: number, out: Float32Array): void;
  quantMatmul(bits: number, G: number, x: Float32Array, M: number, K: number, N: number, q: Uint8Array, scales: Uint16Array,
    bias: Float32Array | null, out: Float32Array): void;
}
const K = kernels<QuantKernels>(['quantizeWeights', 'dequantizeWeights', 'quantMatmul']);

function bytesView(t: Tensor): Uint8Array {
  return new Uint8Array(t.storage.buffer, t.byteOffset, t.size * (t.dtype === 'float32' ? 4 : t.dtype === 'bfloat16' || t.dtype === 'float16' ? 2 : 1));
}

function checkFormat(op: string, bits: number, groupSize: number, Kdim: number): void {
  if (bits !== 4 && bits !== 8) throw new RangeError(`${op}: bits must be 4 or 8, got ${bits}`);
  if (!Number.isInteger(groupSize) || groupSize < 32 || groupSize % 32 !== 0) {
    throw new RangeError(`${op}: groupSize must be a positive multiple of 32, got ${groupSize}`);
  }
  if (Kdim % groupSize !== 0) throw new RangeError(`${op}: input features ${Kdim} must be a multiple of groupSize ${groupSize}`);
}

/** Quantises a float32 or bfloat16 weight [N, K] (symmetric, per group). */
export function quantizeWeight(w: Tensor, bits: QuantBits, groupSize = bits === 4 ? 32 : 128): QuantizedWeight {
  const op = 'quantizeWeight';
  if (w.ndim !== 2) throw new RangeError(`${op}: weight must be [N, K], got [${w.shape}]`);
  if (w.dtype !== 'float32' && w.dtype !== 'bfloat16') throw new TypeError(`${op}: weight must be float32 or bfloat16, got ${w.dtype} [${w.shape}]`);
  const [N, Kdim] = w.shape as [number, number];
  checkFormat(op, bits, groupSize, Kdim);
  const wc = w.isContiguous ? w : contiguousCopy(w);
  const q = bits === 8 ? empty([N, Kdim], 'int8') : empty([N, Kdim / 2], 'uint8');
  const scales = empty([N, Kdim / groupSize], 'float16');
  try {
    K.quantizeWeights(bits, groupSize, bytesView(wc), DTYPE_CODE[wc.dtype], N, Kdim, bytesView(q), scales.data<Uint16Array>());
  } finally {
    if (wc !== w) wc.dispose();
  }
  return { bits, groupSize, shape: [N, Kdim], q, scales };
}

/** Rebuilds a quantised weight from stored tensors (checks shapes and dtypes). */
export function quantizedWeightFrom(q: Tensor, scales: Tensor, bits: QuantBits, groupSize: number, shape: readonly [number, number]): QuantizedWeight {
  const op = 'quantizedWeightFrom';
  const [N, Kdim] = shape;
  checkFormat(op, bits, groupSize, Kdim);
  const qShape = bits === 8 ? [N, Kdim] : [N, Kdim / 2];
  const qDtype = bits === 8 ? 'int8' : 'uint8';
  if (q.dtype !== qDtype || q.ndim !== 2 || q.shape[0] !== qShape[0] || q.shape[1] !== qShape[1] || !q.isContiguous) {
    throw new RangeError(`${op}: q must be contiguous ${qDtype} [${qShape}] for int${bits} [${shape}], got ${q.dtype} [${q.shape}]`);
  }
  if (scales.dtype !== 'float16' || scales.ndim !== 2 || scales.shape[0] !== N || scales.shape[1] !== Kdim / groupSize || !scales.isContiguous) {
    throw new RangeError(`${op}: scales must be contiguous float16 [${N}, ${Kdim / groupSize}], got ${scales.dtype} [${scales.shape}]`);
  }
  return { bits, groupSize, shape: [N, Kdim], q, scales };
}

/** The float32 weight [N, K] the quantised one stands for. */
export function dequantizeWeight(w: QuantizedWeight): Tensor {
  const [N, Kdim] = w.shape;
  const out = empty([N, Kdim], 'float32');
  K.dequantizeWeights(w.bits, w.groupSize, bytesView(w.q), w.scales.data<Uint16Array>(), N, Kdim, out.data<Float32Array>());
  return out;
}

/** y = x · dequant(W)ᵀ + bias; x [..., K] float32 → [..., N]. No gradient. */
export function quantLinear(x: Tensor, w: QuantizedWeight, bias?: Tensor): Tensor {
  const op = 'quantLinear';
  const [N, Kdim] = w.shape;
  if (x.dtype !== 'float32') throw new TypeError(`${op}: x must be float32, got ${x.dtype} [${x.shape}]`);
  if (x.ndim < 1 || x.shape[x.ndim - 1] !== Kdim) {
    throw new RangeError(`${op}: x [${x.shape}] must end in the weight's input features ${Kdim} (weight [${N}, ${Kdim}] int${w.bits})`);
  }
  if (bias && (bias.dtype !== 'float32' || bias.ndim !== 1 || bias.shape[0] !== N)) {
    throw new RangeError(`${op}: bias must be float32 [${N}], got ${bias.dtype} [${bias.shape}]`);
  }
  if (w.q.isDisposed || w.scales.isDisposed) throw new Error(`${op}: the quantised weight [${N}, ${Kdim}] was disposed`);
  const M = numelOf(x.shape.slice(0, -1));
  const xc = x.isContiguous ? x : contiguousCopy(x);
  const bc = bias && !bias.isContiguous ? contiguousCopy(bias) : bias;
  const out = empty([...x.shape.slice(0, -1), N], 'float32');
  try {
    K.quantMatmul(w.bits, w.groupSize, xc.data<Float32Array>(), M, Kdim, N, bytesView(w.q), w.scales.data<Uint16Array>(),
      bc ? bc.data<Float32Array>() : null, out.data<Float32Array>());
  } finally {
    if (xc !== x) xc.dispose();
    if (bc && bc !== bias) bc.dispose();
  }
  return out;
}

/** Bytes a pass over the weight reads (values + scales). */
export function quantizedBytes(w: QuantizedWeight): number {
  return w.q.size + w.scales.size * 2;
}

export function disposeQuantized(w: QuantizedWeight): void {
  w.q.dispose();
  w.scales.dispose();
}
