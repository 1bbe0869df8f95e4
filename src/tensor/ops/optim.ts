/**
 * Optimizer kernels as functions (the optimizer classes live in
 * src/training): a fused in-place AdamW step and global gradient-norm
 * clipping (native/src/adamw*.cc). They update tensors in place and record
 * no gradient.
 */
import { type Tensor, contiguousCopy } from '../tensor.ts';
import { kernels } from '../native.ts';

type FloatArray = Float32Array | Float64Array;

interface OptimKernels {
  adamwStep(p: FloatArray, g: FloatArray, m: FloatArray, v: FloatArray, n: number, lr: number, beta1: number, beta2: number, eps: number, weightDecay: number, step: number): void;
  sumSquares(x: FloatArray, n: number): number;
  scaleInPlace(x: FloatArray, n: number, s: number): void;
}
const K = kernels<OptimKernels>(['adamwStep', 'sumSquares', 'scaleInPlace']);

export interface AdamWOptions {
  lr: number;
  /** Default 0.9. */
  beta1?: number;
  /** Default 0.999. */
  beta2?: number;
  /** Default 1e-8. */
  eps?: number;
  /** Decoupled weight decay (p *= 1 - lr·weightDecay). Default 0.01. */
  weightDecay?: number;
  /** 1-based step count, for bias correction. */
  step: number;
}

function checkDense(op: string, name: string, t: Tensor, like: Tensor): void {
  if (t.dtype !== like.dtype) throw new TypeError(`${op}: ${name} is ${t.dtype}, param is ${like.dtype}`);
  if (t.size !== like.size || t.ndim !== like.ndim || t.shape.some((s, i) => s !== like.shape[i])) {
    throw new RangeError(`${op}: ${name} [${t.shape}] does not match param [${like.shape}]`);
  }
  if (!t.isContiguous) throw new RangeError(`${op}: ${name} [${t.shape}] must be contiguous (it is updated in place)`);
}

/**
 * One AdamW step, in place on param, m (first moment) and v (second moment),
 * matching torch.optim.AdamW: decoupled weight decay, then the bias-corrected
 * Adam update.
 */
export function adamwStep(param: Tensor, grad: Tensor, m: Tensor, v: Tensor, opts: AdamWOptions): void {
  const op = 'adamwStep';
  if (param.dtype !== 'float32' && param.dtype !== 'float64') throw new TypeError(`${op}: param must be float32 or float64, got ${param.dtype}`);
  checkDense(op, 'param', param, param);
  checkDense(op, 'm', m, param);
  checkDense(op, 'v', v, param);
  if (grad.dtype !== param.dtype) throw new TypeError(`${op}: grad is ${grad.dtype}, param is ${param.dtype}`);
  if (grad.ndim !== param.ndim || grad.shape.some((s, i) => s !== param.shape[i])) {
    throw new RangeError(`${op}: grad [${grad.shape}] does not match param [${param.shape}]`);
  }
  const { lr, step } = opts;
  const beta1 = opts.beta1 ?? 0.9, beta2 = opts.beta2 ?? 0.999, eps = opts.eps ?? 1e-8, wd = opts.weightDecay ?? 0.01;
  if (!Number.isInteger(step) || step < 1) throw new RangeError(`${op}: step must be an integer >= 1, got ${step}`);
  if (!Number.isFinite(lr)) throw new RangeError(`${op}: lr must be finite, got ${lr}`);
  if (!(beta1 >= 0 && beta1 < 1 && beta2 >= 0 && beta2 < 1)) throw new RangeError(`${op}: betas must be in [0, 1), got ${beta1}, ${beta2}`);
  if (param.size === 0) return;
  const g = grad.isContiguous ? grad : contiguousCopy(grad);
  K.adamwStep(param.data<FloatArray>(), g.data<FloatArray>(), m.data<FloatArray>(), v.data<FloatArray>(), param.size, lr, beta1, beta2, eps, wd, step);
  if (g !== grad) g.dispose();
}

/**
 * Scales the gradients in place so that their global L2 norm is at most
 * maxNorm (coefficient maxNorm / (norm + 1e-6), as torch), and returns the
 * norm before clipping. Null entries are skipped. A non-finite norm is
 * returned without scaling, so the caller can skip the step.
 */
export function clipGradNorm(grads: readonly (Tensor | null | undefined)[], maxNorm: number): number {
  const op = 'clipGradNorm';
  if (!(maxNorm >= 0)) throw new RangeError(`${op}: maxNorm must be a non-negative number, got ${maxNorm}`);
  const list = grads.filter((g): g is Tensor => !!g);
  for (const g of list) {
    if (g.dtype !== 'float32' && g.dtype !== 'float64') throw new TypeError(`${op}: gradient [${g.shape}] is ${g.dtype} (float32 or float64 only)`);
    if (!g.isContiguous) throw new RangeError(`${op}: gradient [${g.shape}] must be contiguous (it is scaled in place)`);
  }
  let sq = 0;
  for (const g of list) sq += K.sumSquares(g.data<FloatArray>(), g.size);
  const norm = Math.sqrt(sq);
  const coef = maxNorm / (norm + 1e-6);
  if (Number.isFinite(norm) && coef < 1) for (const g of list) K.scaleInPlace(g.data<FloatArray>(), g.size, coef);
  return norm;
}
