/**
 * LayerNorm and RMSNorm over the last dim, with native forward (saving the
 * per-row mean and reciprocal std) and native backward for x, weight and
 * bias (native/src/norm*.cc). float32/float64.
 */
import { Tensor, empty, contiguousCopy } from '../tensor.ts';
import { record } from '../autograd.ts';
import { kernels } from '../native.ts';
import { assertFloat } from './elementwise.ts';

type FloatArray = Float32Array | Float64Array;

interface NormKernels {
  layerNormForward(x: FloatArray, w: FloatArray | null, b: FloatArray | null, y: FloatArray, mean: FloatArray, rstd: FloatArray, rows: number, D: number, eps: number): void;
  layerNormBackward(g: FloatArray, x: FloatArray, w: FloatArray | null, mean: FloatArray, rstd: FloatArray, gx: FloatArray, gw: FloatArray | null, gb: FloatArray | null, rows: number, D: number): void;
  rmsNormForward(x: FloatArray, w: FloatArray | null, y: FloatArray, rstd: FloatArray, rows: number, D: number, eps: number): void;
  rmsNormBackward(g: FloatArray, x: FloatArray, w: FloatArray | null, rstd: FloatArray, gx: FloatArray, gw: FloatArray | null, rows: number, D: number): void;
}
const K = kernels<NormKernels>(['layerNormForward', 'layerNormBackward', 'rmsNormForward', 'rmsNormBackward']);

interface Prepared {
  xc: Tensor;
  params: (Tensor | null)[];
  rows: number;
  D: number;
}

/** Validates x [..., D] and the optional [D] parameters; returns contiguous versions. */
function prepare(op: string, x: Tensor, params: (Tensor | null | undefined)[], names: string[], eps: number): Prepared {
  const present = params.filter((p): p is Tensor => !!p);
  assertFloat(op, x, ...present);
  if (x.ndim === 0) throw new RangeError(`${op}: input must have at least one dim`);
  if (!(eps >= 0)) throw new RangeError(`${op}: eps must be a non-negative number, got ${eps}`);
  const D = x.shape[x.ndim - 1];
  params.forEach((p, i) => {
    if (p && (p.ndim !== 1 || p.shape[0] !== D)) {
      throw new RangeError(`${op}: ${names[i]} [${p.shape}] does not match the last dim of x [${x.shape}]`);
    }
  });
  return {
    xc: x.isContiguous ? x : contiguousCopy(x),
    params: params.map((p) => (p ? (p.isContiguous ? p : contiguousCopy(p)) : null)),
    rows: D === 0 ? 0 : x.size / D,
    D,
  };
}

function arrOf(t: Tensor | null | undefined): FloatArray | null {
  return t ? t.data<FloatArray>() : null;
}

function disposeCopies(p: Prepared, x: Tensor, originals: (Tensor | null | undefined)[]): void {
  if (p.xc !== x) p.xc.dispose();
  p.params.forEach((c, i) => {
    if (c && c !== originals[i]) c.dispose();
  });
}

/** (x - mean) / sqrt(var + eps) * weight + bias over the last dim (weight and bias optional). */
export function layerNorm(x: Tensor, weight?: Tensor | null, bias?: Tensor | null, eps = 1e-5): Tensor {
  const p = prepare('layerNorm', x, [weight, bias], ['weight', 'bias'], eps);
  const { xc, rows, D } = p;
  const [wc, bc] = p.params;
  const out = empty(x.shape, x.dtype);
  const mean = empty([rows], x.dtype), rstd = empty([rows], x.dtype);
  if (out.size > 0) {
    K.layerNormForward(xc.data<FloatArray>(), arrOf(wc), arrOf(bc), out.data<FloatArray>(), mean.data<FloatArray>(), rstd.data<FloatArray>(), rows, D, eps);
  }
  const inputs = [x, ...(weight ? [weight] : []), ...(bias ? [bias] : [])];
  const needW = !!weight?.requiresGrad, needB = !!bias?.requiresGrad;
  const hasW = !!weight;
  const res = record('layerNorm', out, inputs, (g, [sx, sm, sr, sw]) => {
    const gc = g.isContiguous ? g : contiguousCopy(g);
    const gx = empty(sx.shape, sx.dtype);
    const gw = needW ? empty([D], sx.dtype) : null;
    const gb = needB ? empty([D], sx.dtype) : null;
    K.layerNormBackward(gc.data<FloatArray>(), sx.data<FloatArray>(), arrOf(sw), sm.data<FloatArray>(), sr.data<FloatArray>(),
      gx.data<FloatArray>(), arrOf(gw), arrOf(gb), rows, D);
    if (gc !== g) gc.dispose();
    return hasW ? [gx, gw, gb] : [gx, gb];
  }, [xc, mean, rstd, ...(wc ? [wc] : [])]);
  mean.dispose();
  rstd.dispose();
  disposeCopies(p, x, [weight, bias]);
  return res;
}

/** x / sqrt(mean(x^2) + eps) * weight over the last dim (weight optional). */
export function rmsNorm(x: Tensor, weight?: Tensor | null, eps = 1e-6): Tensor {
  const p = prepare('rmsNorm', x, [weight], ['weight'], eps);
  const { xc, rows, D } = p;
  const [wc] = p.params;
  const out = empty(x.shape, x.dtype);
  const rstd = empty([rows], x.dtype);
  if (out.size > 0) K.rmsNormForward(xc.data<FloatArray>(), arrOf(wc), out.data<FloatArray>(), rstd.data<FloatArray>(), rows, D, eps);
  const needW = !!weight?.requiresGrad;
  const res = record('rmsNorm', out, weight ? [x, weight] : [x], (g, [sx, sr, sw]) => {
    const gc = g.isContiguous ? g : contiguousCopy(g);
    const gx = empty(sx.shape, sx.dtype);
    const gw = needW ? empty([D], sx.dtype) : null;
    K.rmsNormBackward(gc.data<FloatArray>(), sx.data<FloatArray>(), arrOf(sw), sr.data<FloatArray>(), gx.data<FloatArray>(), arrOf(gw), rows, D);
    if (gc !== g) gc.dispose();
    return [gx, gw];
  }, [xc, rstd, ...(wc ? [wc] : [])]);
  rstd.dispose();
  disposeCopies(p, x, [weight]);
  return res;
}
