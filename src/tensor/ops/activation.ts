/**
 * Activations (gelu with erf, gelu with tanh, quickGelu, silu) and the fused
 * hot chains: `biasAct` (bias over the last dim + activation, one pass each
 * way) and `swiglu` (silu(gate) * up). relu, sigmoid and tanh live in
 * elementwise.ts. float32/float64, each with its gradient.
 */
import { Tensor, empty, zeros, contiguousCopy } from '../tensor.ts';
import { record } from '../autograd.ts';
import { kernels } from '../native.ts';
import { expand } from './view.ts';
import { sumTo } from './reduce.ts';
import { assertFloat, binaryOp, unaryOp, broadcastShapes, relu, sigmoid, tanh, BIN, UN } from './elementwise.ts';

type FloatArray = Float32Array | Float64Array;

interface ActKernels {
  biasActForward(x: FloatArray, bias: FloatArray | null, y: FloatArray, rows: number, D: number, act: number): void;
  biasActBackward(g: FloatArray, x: FloatArray, bias: FloatArray | null, gx: FloatArray, gbias: FloatArray | null, rows: number, D: number, act: number): void;
  swigluBackward(g: FloatArray, gate: FloatArray, up: FloatArray, ggate: FloatArray, gup: FloatArray, n: number): void;
}
const K = kernels<ActKernels>(['biasActForward', 'biasActBackward', 'swigluBackward']);

export type Activation = 'none' | 'relu' | 'gelu' | 'geluTanh' | 'quickGelu' | 'silu' | 'sigmoid' | 'tanh';

/** Activation codes of the fused kernels (ActCode in native/src/elementwise_math.h). */
export const ACT: Record<Activation, number> = {
  none: 0, relu: 1, gelu: 2, geluTanh: 3, quickGelu: 4, silu: 5, sigmoid: 6, tanh: 7,
};

function activationWithGrad(op: string, code: number, bwd: number, x: Tensor): Tensor {
  const out = unaryOp(op, code, x);
  return record(op, out, [x], (g, [sx]) => [binaryOp(op, bwd, g, sx)], [x]);
}

/** GELU with the exact erf: 0.5·x·(1 + erf(x/√2)). */
export function gelu(x: Tensor): Tensor {
  return activationWithGrad('gelu', UN.gelu, BIN.geluBwd, x);
}

/** GELU, tanh approximation: 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))). */
export function geluTanh(x: Tensor): Tensor {
  return activationWithGrad('geluTanh', UN.geluTanh, BIN.geluTanhBwd, x);
}

/** x·sigmoid(1.702·x) (CLIP-style quick GELU). */
export function quickGelu(x: Tensor): Tensor {
  return activationWithGrad('quickGelu', UN.quickGelu, BIN.quickGeluBwd, x);
}

/** x·sigmoid(x) (a.k.a. swish). */
export function silu(x: Tensor): Tensor {
  return activationWithGrad('silu', UN.silu, BIN.siluBwd, x);
}

function checkAct(op: string, act: string): void {
  if (!Object.hasOwn(ACT, act)) throw new RangeError(`${op}: unknown activation '${act}' (expected one of ${Object.keys(ACT).join(', ')})`);
}

/** Applies the activation named `act` ('none' returns x itself). */
export function activate(x: Tensor, act: Activation): Tensor {
  checkAct('activate', act);
  switch (act) {
    case 'none': return x;
    case 'relu': return relu(x);
    case 'gelu': return gelu(x);
    case 'geluTanh': return geluTanh(x);
    case 'quickGelu': return quickGelu(x);
    case 'silu': return silu(x);
    case 'sigmoid': return sigmoid(x);
    case 'tanh': return tanh(x);
  }
}

/** act(x + bias) with bias [D] over the last dim of x [..., D] (bias may be null), fused forward and backward. */
export function biasAct(x: Tensor, bias: Tensor | null, act: Activation): Tensor {
  checkAct('biasAct', act);
  if (bias) assertFloat('biasAct', x, bias);
  else assertFloat('biasAct', x);
  if (x.ndim === 0) throw new RangeError('biasAct: x must have at least one dim');
  const D = x.shape[x.ndim - 1];
  if (bias && (bias.ndim !== 1 || bias.shape[0] !== D)) {
    throw new RangeError(`biasAct: bias [${bias.shape}] does not match the last dim of x [${x.shape}]`);
  }
  const code = ACT[act];
  const rows = D === 0 ? 0 : x.size / D;
  const xc = x.isContiguous ? x : contiguousCopy(x);
  const bc = bias && !bias.isContiguous ? contiguousCopy(bias) : bias;
  const out = empty(x.shape, x.dtype);
  if (out.size > 0) K.biasActForward(xc.data<FloatArray>(), bc ? bc.data<FloatArray>() : null, out.data<FloatArray>(), rows, D, code);
  const inputs = bias ? [x, bias] : [x];
  const needBias = !!bias && bias.requiresGrad;
  const res = record('biasAct', out, inputs, (g, saved) => {
    const [sx, sb] = saved;
    const gc = g.isContiguous ? g : contiguousCopy(g);
    const gx = empty(sx.shape, sx.dtype);
    const gb = needBias ? (gx.size > 0 ? empty([D], sx.dtype) : zeros([D], sx.dtype)) : null;
    if (gx.size > 0) {
      K.biasActBackward(gc.data<FloatArray>(), sx.data<FloatArray>(), sb ? sb.data<FloatArray>() : null, gx.data<FloatArray>(),
        gb ? gb.data<FloatArray>() : null, rows, D, code);
    }
    if (gc !== g) gc.dispose();
    return [gx, gb];
  }, bc ? [xc, bc] : [xc]);
  if (xc !== x) xc.dispose();
  if (bc && bc !== bias) bc.dispose();
  return res;
}

/** silu(gate) · up (the SwiGLU gate of LLaMA/Qwen MLPs); gate and up broadcast together. */
export function swiglu(gate: Tensor, up: Tensor): Tensor {
  const out = binaryOp('swiglu', BIN.swiglu, gate, up);
  const shape = broadcastShapes(gate.shape, up.shape, 'swiglu');
  const sg = gate.shape, su = up.shape;
  return record('swiglu', out, [gate, up], (g, [a, u]) => {
    // The fused backward wants contiguous same-shape operands; broadcast ones are expanded first.
    const dense = (t: Tensor): Tensor => {
      const v = t.shape.length === shape.length && t.shape.every((s, i) => s === shape[i]) ? t : expand(t, shape);
      return v.isContiguous ? v : contiguousCopy(v);
    };
    const gc = dense(g), ac = dense(a), uc = dense(u);
    const ggate = empty(shape, a.dtype), gup = empty(shape, a.dtype);
    if (ggate.size > 0) {
      K.swigluBackward(gc.data<FloatArray>(), ac.data<FloatArray>(), uc.data<FloatArray>(), ggate.data<FloatArray>(), gup.data<FloatArray>(), ggate.size);
    }
    return [sumTo(ggate, sg), sumTo(gup, su)];
  }, [gate, up]);
}
