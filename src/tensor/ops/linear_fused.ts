/**
 * Linear layers fused with what follows them, each one native call
 * (native/src/gemm_fused.cc):
 * - `linearSwiGLU`: the gate/up front of a SwiGLU feed-forward,
 *   silu(x·gateᵀ + b) ⊙ (x·upᵀ + c). In prefill the two [rows, hidden] products
 *   are a layer's largest tensors; fused, they never reach memory.
 * - `linearAct`: act(x·wᵀ + b), the up-projection of a GELU MLP, whose output
 *   the activation op would otherwise read and write once more.
 * On the AMX bf16 path each 32-column block is combined while it is in cache.
 * When a gradient is wanted they are composed of the plain ops (linear,
 * swiglu, the activations), so training sees the ops it always did.
 */
import { Tensor, empty, contiguousCopy, storageBytes, DTYPE_CODE } from '../tensor.ts';
import { needsGrad } from '../autograd.ts';
import { kernels } from '../native.ts';
import { linear } from './matmul.ts';
import { swiglu, activate, ACT, type Activation } from './activation.ts';

interface LinearFusedKernels {
  // Both: x, xOff, M, K, ldx, wDt, N, out, outOff, then each weight as (storage, offset, bias | null, bias offset).
  linearSwiGLU(...args: (Uint8Array | number | null)[]): void;
  linearAct(...args: (Uint8Array | number | null)[]): void;
}
let LK: LinearFusedKernels | null = null;
const kernel = (): LinearFusedKernels => (LK ??= kernels<LinearFusedKernels>(['linearSwiGLU', 'linearAct']));

const fmt = (t: Tensor): string => `[${t.shape}] ${t.dtype}`;

/**
 * silu(x · gateᵀ + gateBias) ⊙ (x · upᵀ + upBias): x [..., in] float32, gate and up
 * [hidden, in] (float32 or bfloat16, the same dtype), optional biases [hidden] of x's dtype
 * → [..., hidden]. Equal to `swiglu(linear(x, gate, gateBias), linear(x, up, upBias))`;
 * float64 and gradients take that composition.
 */
export function linearSwiGLU(x: Tensor, gate: Tensor, up: Tensor, gateBias?: Tensor | null, upBias?: Tensor | null): Tensor {
  if (!(x instanceof Tensor) || !(gate instanceof Tensor) || !(up instanceof Tensor)) {
    throw new TypeError('linearSwiGLU: x, gate and up must be Tensors');
  }
  if (gate.ndim !== 2 || up.ndim !== 2 || gate.shape[0] !== up.shape[0] || gate.shape[1] !== up.shape[1] || gate.dtype !== up.dtype) {
    throw new RangeError(`linearSwiGLU: gate ${fmt(gate)} and up ${fmt(up)} must be [hidden, in] weights of one dtype`);
  }
  const inF = gate.shape[1], outF = gate.shape[0];
  if (x.ndim < 1 || x.shape[x.ndim - 1] !== inF) {
    throw new RangeError(`linearSwiGLU: x ${fmt(x)} has ${x.shape[x.ndim - 1]} features, the weights expect ${inF}`);
  }
  for (const [b, what] of [[gateBias, 'gate bias'], [upBias, 'up bias']] as const) {
    if (b != null && (!(b instanceof Tensor) || b.ndim !== 1 || b.shape[0] !== outF || b.dtype !== x.dtype)) {
      throw new RangeError(`linearSwiGLU: ${what} must be [${outF}] ${x.dtype}, got ${b instanceof Tensor ? fmt(b) : typeof b}`);
    }
  }
  const native = x.dtype === 'float32' && (gate.dtype === 'float32' || gate.dtype === 'bfloat16') && inF > 0 && outF > 0 &&
    !needsGrad(x, gate, up, gateBias, upBias);
  if (!native) {
    const g = linear(x, gate, gateBias), u = linear(x, up, upBias);
    const out = swiglu(g, u);
    g.dispose();
    u.dispose();
    return out;
  }
  return runFused('linearSwiGLU', x, inF, outF, gate.dtype, [[gate, gateBias], [up, upBias]]);
}

/**
 * act(x · wᵀ + bias): x [..., in] float32, w [out, in] (float32 or bfloat16), bias [out] of x's
 * dtype or null, act one of the activation ops' names other than 'none' → [..., out]. Equal to
 * `activate(linear(x, w, bias), act)`; float64 and gradients take that composition.
 */
export function linearAct(x: Tensor, w: Tensor, bias: Tensor | null | undefined, act: Activation): Tensor {
  if (!(x instanceof Tensor) || !(w instanceof Tensor)) throw new TypeError('linearAct: x and w must be Tensors');
  if (!Object.hasOwn(ACT, act) || act === 'none') {
    throw new RangeError(`linearAct: unknown activation '${String(act)}' (expected one of ${Object.keys(ACT).filter((a) => a !== 'none').join(', ')})`);
  }
  if (w.ndim !== 2) throw new RangeError(`linearAct: w must be an [out, in] weight, got ${fmt(w)}`);
  const inF = w.shape[1], outF = w.shape[0];
  if (x.ndim < 1 || x.shape[x.ndim - 1] !== inF) {
    throw new RangeError(`linearAct: x ${fmt(x)} has ${x.shape[x.ndim - 1]} features, w ${fmt(w)} expects ${inF}`);
  }
  if (bias != null && (!(bias instanceof Tensor) || bias.ndim !== 1 || bias.shape[0] !== outF || bias.dtype !== x.dtype)) {
    throw new RangeError(`linearAct: bias must be [${outF}] ${x.dtype}, got ${bias instanceof Tensor ? fmt(bias) : typeof bias}`);
  }
  const native = x.dtype === 'float32' && (w.dtype === 'float32' || w.dtype === 'bfloat16') && inF > 0 && outF > 0 &&
    !needsGrad(x, w, bias);
  if (!native) {
    const y = linear(x, w, bias);
    const out = activate(y, act);
    if (out !== y) y.dispose();
    return out;
  }
  return runFused('linearAct', x, inF, outF, w.dtype, [[w, bias]], ACT[act]);
}

/** The native call of a fused linear: x and the weights made contiguous, out [..., outF] float32. */
function runFused(
  name: 'linearSwiGLU' | 'linearAct', x: Tensor, inF: number, outF: number, wDtype: Tensor['dtype'],
  weights: [Tensor, Tensor | null | undefined][], ...extra: number[]
): Tensor {
  const owned: Tensor[] = [];
  const dense = (t: Tensor): Tensor => {
    if (t.isContiguous) return t;
    const c = contiguousCopy(t);
    owned.push(c);
    return c;
  };
  try {
    const xs = dense(x);
    const wargs: (Uint8Array | number | null)[] = [];
    for (const [w, b] of weights) {
      const ws = dense(w), bs = b ? dense(b) : null;
      wargs.push(storageBytes(ws), ws.offset, bs ? storageBytes(bs) : null, bs ? bs.offset : 0);
    }
    const out = empty([...x.shape.slice(0, -1), outF], 'float32');
    try {
      kernel()[name](storageBytes(xs), xs.offset, xs.size / inF, inF, inF, DTYPE_CODE[wDtype], outF, storageBytes(out), out.offset, ...wargs, ...extra);
    } catch (err) {
      out.dispose();
      throw err;
    }
    return out;
  } finally {
    for (const t of owned) t.dispose();
  }
}
