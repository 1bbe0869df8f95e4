import { Tensor, empty, uniform_, linear } from '../tensor/index.ts';
import { expand } from '../tensor/ops/view.ts';
import { quantLinear, disposeQuantized, type QuantizedWeight } from '../tensor/ops/quant.ts';
import { activate, type Activation } from '../tensor/ops/activation.ts';
import { linearAct } from '../tensor/ops/linear_fused.ts';
import { Module } from './module.ts';
import { needsGrad } from '../tensor/autograd.ts';

export interface LinearOptions {
  bias?: boolean;
  dtype?: 'float32' | 'float64';
  /**
   * Parameters that already exist (e.g. a checkpoint's memory-mapped bf16
   * weights), used as they are — no copy, any float dtype, strided views
   * allowed — instead of new randomly initialised ones. Whether there is a
   * bias then follows from the tensors given, not from `bias`.
   */
  tensors?: { weight: Tensor; bias?: Tensor | null };
  /** An inference-only int8/int4 weight (and float32 bias) instead of a float weight; see fromQuantized. */
  quantized?: { weight: QuantizedWeight; bias?: Tensor | null };
  /** Whether given `tensors` are trained (requiresGrad); default false: frozen, as loaded for inference. */
  trainable?: boolean;
}

/** The stand-in `weight` of a Linear built quantised: right shape, no memory, already freed (as after setQuantized). */
function freedWeight(qw: QuantizedWeight): Tensor {
  const one = empty([1, 1], 'bfloat16');
  const w = expand(one, [qw.shape[0], qw.shape[1]]);
  one.dispose();
  w.dispose();
  return w;
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
    if (opts.tensors && opts.quantized) throw new TypeError(`Linear(${inFeatures} → ${outFeatures}): give either tensors or a quantized weight, not both`);
    const q = opts.quantized;
    const given = opts.tensors ?? (q ? { weight: freedWeight(q.weight), bias: q.bias } : null);
    if (given) {
      const { weight, bias = null } = given;
      const fit = (shape: readonly number[], want: number[], what: string): void => {
        if (shape.length !== want.length || shape.some((d, i) => d !== want[i])) {
          throw new RangeError(`Linear(${inFeatures} → ${outFeatures}): ${what} has shape [${shape}], expected [${want}]`);
        }
      };
      fit(q ? q.weight.shape : weight.shape, [outFeatures, inFeatures], q ? `quantized weight (int${q.weight.bits})` : 'weight');
      if (bias) fit(bias.shape, [outFeatures], 'bias');
      const trainable = (opts.trainable ?? false) && !q;
      this.weight = this.param('weight', weight, trainable);
      this.bias = bias ? this.param('bias', bias, trainable) : null;
      if (q) this.quantized = q.weight;
      return;
    }
    const dtype = opts.dtype ?? 'float32';
    const bound = 1 / Math.sqrt(inFeatures);
    this.weight = this.param('weight', uniform_(empty([outFeatures, inFeatures], dtype), -bound, bound));
    this.bias = opts.bias === false ? null : this.param('bias', uniform_(empty([outFeatures], dtype), -bound, bound));
  }

  /**
   * A Linear around existing tensors: weight [out, in] kept as given (a
   * memory-mapped bf16 weight stays mapped: no float32 copy) and an optional
   * bias [out]. Frozen unless `trainable`.
   */
  static fromTensors(weight: Tensor, bias: Tensor | null = null, opts: { trainable?: boolean } = {}): Linear {
    if (weight.ndim !== 2) throw new RangeError(`Linear.fromTensors: weight must be [out, in], got [${weight.shape}]`);
    return new Linear(weight.shape[1]!, weight.shape[0]!, { tensors: { weight, bias }, trainable: opts.trainable ?? false });
  }

  /**
   * A Linear that runs with an int8/int4 weight from the start (e.g. the
   * packed tensors of a quantised checkpoint, used in place); bias float32 [out].
   * Its `weight` is a freed stand-in of the right shape, as after setQuantized.
   */
  static fromQuantized(qw: QuantizedWeight, bias: Tensor | null = null): Linear {
    return new Linear(qw.shape[1], qw.shape[0], { quantized: { weight: qw, bias } });
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

  /** act(forward(x)); plain weights run it as one fused call (`linearAct`: the output is written once). */
  forwardAct(x: Tensor, act: Activation): Tensor {
    if (!this.quantized) return linearAct(x, this.weight, this.bias, act);
    const y = this.forward(x);
    const out = activate(y, act);
    if (out !== y) y.dispose();
    return out;
  }

  override dispose(): void {
    if (this.quantized) disposeQuantized(this.quantized);
    this.quantized = null;
    super.dispose();
  }
}

/**
 * fc2(act(fc1(x))), the two-layer MLP of the vision towers and adapters: fc1 and its activation
 * fused (`Linear.forwardAct`), the hidden tensor freed as soon as fc2 has read it (when no
 * gradient graph holds it).
 */
export function mlpForward(fc1: Linear, fc2: Linear, x: Tensor, act: Activation): Tensor {
  const h = fc1.forwardAct(x, act);
  const out = fc2.forward(h);
  if (!needsGrad(out)) h.dispose();
  return out;
}
