/**
 * softmax / logSoftmax over one dim (the last by default), with native
 * forward and backward kernels (native/src/softmax*.cc). A dim other than
 * the last is moved last, computed there, and moved back.
 */
import { Tensor, empty, contiguousCopy } from '../tensor.ts';
import { record } from '../autograd.ts';
import { kernels } from '../native.ts';
import { transpose, contiguous, normDim } from './view.ts';
import { assertFloat } from './elementwise.ts';

type FloatArray = Float32Array | Float64Array;

interface SoftmaxKernels {
  softmaxForward(x: FloatArray, y: FloatArray, rows: number, n: number, log: boolean): void;
  softmaxBackward(g: FloatArray, y: FloatArray, gx: FloatArray, rows: number, n: number, log: boolean): void;
}
const K = kernels<SoftmaxKernels>(['softmaxForward', 'softmaxBackward']);

function softmaxLast(op: string, x: Tensor, log: boolean): Tensor {
  const n = x.shape[x.ndim - 1];
  const rows = n === 0 ? 0 : x.size / n;
  const xc = x.isContiguous ? x : contiguousCopy(x);
  const out = empty(x.shape, x.dtype);
  if (out.size > 0) K.softmaxForward(xc.data<FloatArray>(), out.data<FloatArray>(), rows, n, log);
  if (xc !== x) xc.dispose();
  return record(op, out, [x], (g, [y]) => {
    const gc = g.isContiguous ? g : contiguousCopy(g);
    const gx = empty(y.shape, y.dtype);
    if (gx.size > 0) K.softmaxBackward(gc.data<FloatArray>(), y.data<FloatArray>(), gx.data<FloatArray>(), rows, n, log);
    if (gc !== g) gc.dispose();
    return [gx];
  }, [out]);
}

function softmaxDim(op: string, x: Tensor, dim: number, log: boolean): Tensor {
  assertFloat(op, x);
  if (x.ndim === 0) throw new RangeError(`${op}: input must have at least one dim`);
  const d = normDim(dim, x.ndim, op);
  if (d === x.ndim - 1) return softmaxLast(op, x, log);
  return contiguous(transpose(softmaxLast(op, transpose(x, d, -1), log), d, -1));
}

/** exp(x) / sum(exp(x)) over `dim` (default last), computed stably. */
export function softmax(x: Tensor, dim = -1): Tensor {
  return softmaxDim('softmax', x, dim, false);
}

/** x - logsumexp(x) over `dim` (default last). */
export function logSoftmax(x: Tensor, dim = -1): Tensor {
  return softmaxDim('logSoftmax', x, dim, true);
}
