/**
 * Cross-entropy fused with log-softmax (native/src/loss*.cc). The forward
 * keeps only each row's max and log-sum-exp; the backward rebuilds
 * softmax - onehot from them, so the [N, V] log-prob matrix is never stored.
 */
import { Tensor, empty, scalar, contiguousCopy } from '../tensor.ts';
import { record } from '../autograd.ts';
import { kernels } from '../native.ts';
import { assertFloat } from './elementwise.ts';

type FloatArray = Float32Array | Float64Array;

interface LossKernels {
  crossEntropyForward(logits: FloatArray, targets: Int32Array, loss: FloatArray, stats: FloatArray, N: number, V: number, ignoreIndex: number, smoothing: number): { sum: number; count: number };
  crossEntropyBackward(logits: FloatArray, targets: Int32Array, stats: FloatArray, g: FloatArray, gStride: number, gScale: number, gx: FloatArray, N: number, V: number, ignoreIndex: number, smoothing: number): void;
}
const K = kernels<LossKernels>(['crossEntropyForward', 'crossEntropyBackward']);

export interface CrossEntropyOptions {
  /** Rows whose target equals this are skipped (no loss, no gradient). Default -100. */
  ignoreIndex?: number;
  /** 'mean' (default) averages over non-ignored rows; 'sum'; 'none' gives one loss per row. */
  reduction?: 'mean' | 'sum' | 'none';
  /** Label smoothing epsilon in [0, 1]: the target distribution is (1-eps)·onehot + eps/V. */
  labelSmoothing?: number;
}

/**
 * Cross-entropy of logits [..., V] against int32 class targets [...].
 * A target that is neither ignoreIndex nor in [0, V) throws, naming its row.
 * 'mean' over zero non-ignored rows gives 0 (and a zero gradient), not NaN,
 * so a fully masked micro-batch cannot poison training.
 */
export function crossEntropy(logits: Tensor, targets: Tensor, opts: CrossEntropyOptions = {}): Tensor {
  const op = 'crossEntropy';
  const ignoreIndex = opts.ignoreIndex ?? -100;
  const reduction = opts.reduction ?? 'mean';
  const smoothing = opts.labelSmoothing ?? 0;
  assertFloat(op, logits);
  if (targets.dtype !== 'int32') throw new TypeError(`${op}: targets must be int32, got ${targets.dtype} [${targets.shape}]`);
  if (logits.ndim < 1) throw new RangeError(`${op}: logits must have a class dim, got [${logits.shape}]`);
  const lead = logits.shape.slice(0, -1);
  if (targets.ndim !== lead.length || targets.shape.some((s, i) => s !== lead[i])) {
    throw new RangeError(`${op}: logits [${logits.shape}] need targets of shape [${lead}], got [${targets.shape}]`);
  }
  if (reduction !== 'mean' && reduction !== 'sum' && reduction !== 'none') throw new RangeError(`${op}: unknown reduction '${reduction}'`);
  if (!(smoothing >= 0 && smoothing <= 1)) throw new RangeError(`${op}: labelSmoothing must be in [0, 1], got ${smoothing}`);
  if (!Number.isInteger(ignoreIndex) || Math.abs(ignoreIndex) > 2 ** 31 - 1) throw new RangeError(`${op}: ignoreIndex must be an int32, got ${ignoreIndex}`);
  const V = logits.shape[logits.ndim - 1];
  const N = targets.size;
  const xc = logits.isContiguous ? logits : contiguousCopy(logits);
  const tc = targets.isContiguous ? targets : contiguousCopy(targets);
  const perRow = empty(targets.shape, logits.dtype);
  const stats = empty([2, N], logits.dtype); // row maxima, then row log-sum-exp minus max
  let res: { sum: number; count: number };
  try {
    res = K.crossEntropyForward(xc.data<FloatArray>(), tc.data<Int32Array>(), perRow.data<FloatArray>(), stats.data<FloatArray>(), N, V, ignoreIndex, smoothing);
  } catch (e) {
    for (const t of [perRow, stats, ...(xc !== logits ? [xc] : []), ...(tc !== targets ? [tc] : [])]) t.dispose();
    throw e;
  }
  let out: Tensor;
  if (reduction === 'none') out = perRow;
  else {
    out = scalar(reduction === 'sum' ? res.sum : res.count > 0 ? res.sum / res.count : 0, logits.dtype);
    perRow.dispose();
  }
  const gScale = reduction === 'mean' ? (res.count > 0 ? 1 / res.count : 0) : 1;
  const gStride = reduction === 'none' ? 1 : 0;
  const result = record(op, out, [logits], (g, [sx, st, sl]) => {
    const gc = g.isContiguous ? g : contiguousCopy(g);
    const gx = empty(sx.shape, sx.dtype);
    K.crossEntropyBackward(sx.data<FloatArray>(), st.data<Int32Array>(), sl.data<FloatArray>(), gc.data<FloatArray>(), gStride, gScale,
      gx.data<FloatArray>(), N, V, ignoreIndex, smoothing);
    if (gc !== g) gc.dispose();
    return [gx];
  }, [xc, tc, stats]);
  stats.dispose();
  if (xc !== logits) xc.dispose();
  if (tc !== targets) tc.dispose();
  return result;
}
