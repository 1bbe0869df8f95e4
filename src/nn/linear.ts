import { Tensor, empty, uniform_, linear } from '../tensor/index.ts';
import { Module } from './module.ts';

export interface LinearOptions {
  bias?: boolean;
  dtype?: 'float32' | 'float64';
}

/** y = x·Wᵀ + b with W [out, in] (PyTorch layout); initialised U(±1/√in) like torch.nn.Linear. */
export class Linear extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor | null;

  constructor(readonly inFeatures: number, readonly outFeatures: number, opts: LinearOptions = {}) {
    super();
    if (!Number.isInteger(inFeatures) || inFeatures <= 0 || !Number.isInteger(outFeatures) || outFeatures <= 0) {
      throw new RangeError(`Linear: features must be positive integers, got in=${inFeatures} out=${outFeatures}`);
    }
    const dtype = opts.dtype ?? 'float32';
    const bound = 1 / Math.sqrt(inFeatures);
    this.weight = this.param('weight', uniform_(empty([outFeatures, inFeatures], dtype), -bound, bound));
    this.bias = opts.bias === false ? null : this.param('bias', uniform_(empty([outFeatures], dtype), -bound, bound));
  }

  forward(x: Tensor): Tensor {
    return linear(x, this.weight, this.bias ?? undefined);
  }
}
