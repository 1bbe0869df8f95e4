import { Tensor, dropoutMask, mul, noGrad } from '../tensor/index.ts';
import { Module } from './module.ts';

/** Inverted dropout: active only in training mode; identity in eval. */
export class Dropout extends Module {
  constructor(readonly p: number) {
    super();
    if (!(p >= 0 && p < 1)) throw new RangeError(`Dropout: p must be in [0, 1), got ${p}`);
  }

  forward(x: Tensor): Tensor {
    if (!this.training || this.p === 0) return x;
    const mask = noGrad(() => dropoutMask(x.shape, this.p, { dtype: x.dtype as 'float32' | 'float64' }));
    const y = mul(x, mask);
    mask.dispose();
    return y;
  }
}
