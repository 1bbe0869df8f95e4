import { Tensor, ones, zeros, layerNorm, rmsNorm } from '../tensor/index.ts';
import { Module } from './module.ts';

/** Existing affine tensors for a norm (used as given, no copy); frozen unless `trainable`. */
export interface NormTensors {
  weight: Tensor;
  bias?: Tensor | null;
  trainable?: boolean;
}

function checkVector(op: string, t: Tensor, dim: number, what: string): void {
  if (t.ndim !== 1 || t.shape[0] !== dim) throw new RangeError(`${op}(${dim}): ${what} has shape [${t.shape}], expected [${dim}]`);
}

/** LayerNorm over the last dimension, with optional affine weight and bias. */
export class LayerNorm extends Module {
  readonly weight: Tensor | null;
  readonly bias: Tensor | null;

  constructor(readonly dim: number, readonly eps = 1e-5, opts: { affine?: boolean; bias?: boolean; dtype?: 'float32' | 'float64'; tensors?: NormTensors } = {}) {
    super();
    const given = opts.tensors;
    if (given) {
      checkVector('LayerNorm', given.weight, dim, 'weight');
      if (given.bias) checkVector('LayerNorm', given.bias, dim, 'bias');
      const trainable = given.trainable ?? false;
      this.weight = this.param('weight', given.weight, trainable);
      this.bias = given.bias ? this.param('bias', given.bias, trainable) : null;
      return;
    }
    const affine = opts.affine ?? true;
    const dtype = opts.dtype ?? 'float32';
    this.weight = affine ? this.param('weight', ones([dim], dtype)) : null;
    this.bias = affine && opts.bias !== false ? this.param('bias', zeros([dim], dtype)) : null;
  }

  /** A LayerNorm around existing weight [dim] and optional bias [dim] (kept as given). */
  static fromTensors(weight: Tensor, bias: Tensor | null, eps = 1e-5, opts: { trainable?: boolean } = {}): LayerNorm {
    if (weight.ndim !== 1) throw new RangeError(`LayerNorm.fromTensors: weight must be [dim], got [${weight.shape}]`);
    return new LayerNorm(weight.shape[0]!, eps, { tensors: { weight, bias, trainable: opts.trainable } });
  }

  forward(x: Tensor): Tensor {
    return layerNorm(x, this.weight ?? undefined, this.bias ?? undefined, this.eps);
  }
}

/** RMSNorm over the last dimension: x / rms(x) · weight. */
export class RMSNorm extends Module {
  readonly weight: Tensor;

  constructor(readonly dim: number, readonly eps = 1e-6, opts: { dtype?: 'float32' | 'float64'; tensors?: Omit<NormTensors, 'bias'> } = {}) {
    super();
    const given = opts.tensors;
    if (given) checkVector('RMSNorm', given.weight, dim, 'weight');
    this.weight = given
      ? this.param('weight', given.weight, given.trainable ?? false)
      : this.param('weight', ones([dim], opts.dtype ?? 'float32'));
  }

  /** An RMSNorm around an existing weight [dim] (kept as given). */
  static fromTensors(weight: Tensor, eps = 1e-6, opts: { trainable?: boolean } = {}): RMSNorm {
    if (weight.ndim !== 1) throw new RangeError(`RMSNorm.fromTensors: weight must be [dim], got [${weight.shape}]`);
    return new RMSNorm(weight.shape[0]!, eps, { tensors: { weight, trainable: opts.trainable } });
  }

  forward(x: Tensor): Tensor {
    return rmsNorm(x, this.weight, this.eps);
  }
}
