import { Tensor, ones, zeros, layerNorm, rmsNorm } from '../tensor/index.ts';
import { Module } from './module.ts';

/** LayerNorm over the last dimension, with optional affine weight and bias. */
export class LayerNorm extends Module {
  readonly weight: Tensor | null;
  readonly bias: Tensor | null;

  constructor(readonly dim: number, readonly eps = 1e-5, opts: { affine?: boolean; bias?: boolean; dtype?: 'float32' | 'float64' } = {}) {
    super();
    const affine = opts.affine ?? true;
    const dtype = opts.dtype ?? 'float32';
    this.weight = affine ? this.param('weight', ones([dim], dtype)) : null;
    this.bias = affine && opts.bias !== false ? this.param('bias', zeros([dim], dtype)) : null;
  }

  forward(x: Tensor): Tensor {
    return layerNorm(x, this.weight ?? undefined, this.bias ?? undefined, this.eps);
  }
}

/** RMSNorm over the last dimension: x / rms(x) · weight. */
export class RMSNorm extends Module {
  readonly weight: Tensor;

  constructor(readonly dim: number, readonly eps = 1e-6, opts: { dtype?: 'float32' | 'float64' } = {}) {
    super();
    this.weight = this.param('weight', ones([dim], opts.dtype ?? 'float32'));
  }

  forward(x: Tensor): Tensor {
    return rmsNorm(x, this.weight, this.eps);
  }
}
