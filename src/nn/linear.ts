import { Tensor, empty, uniform_, linear } from '../tensor/index.ts';
import { quantLinear, disposeQuantized, type QuantizedWeight } from '../tensor/ops/quant.ts';
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

  /** Weight-only int8/int4 form of `weight`, when the layer was quantised for inference. */
  quantized: QuantizedWeight | null = null;

  /** Switches the layer to quantised weights (inference only); the float weight is freed. */
  setQuantized(qw: QuantizedWeight): void {
    if (qw.shape[0] !== this.outFeatures || qw.shape[1] !== this.inFeatures) {
      throw new RangeError(`Linear.setQuantized: weight [${qw.shape}] does not fit Linear(${this.inFeatures} → ${this.outFeatures})`);
    }
    if (this.quantized) disposeQuantized(this.quantized);
    this.quantized = qw;
    this.weight.dispose();
  }

  forward(x: Tensor): Tensor {
    if (this.quantized) return quantLinear(x, this.quantized, this.bias ?? undefined);
    return linear(x, this.weight, this.bias ?? undefined);
  }

  override dispose(): void {
    if (this.quantized) disposeQuantized(this.quantized);
    this.quantized = null;
    super.dispose();
  }
}
