/**
 * Grouped linear: rows [offsets[e], offsets[e+1]) of x go through weight e.
 * This is how a mixture-of-experts layer runs each expert once on its own
 * contiguous batch of tokens. One op (one graph node) for all groups keeps
 * the backward pass at the size of x: a per-group slice op would make every
 * group's gradient a zero-filled copy of the whole input.
 */
import { Tensor, empty, zeros } from '../tensor.ts';
import { record } from '../autograd.ts';
import { gemmInto } from './matmul.ts';

function checkGroups(x: Tensor, weights: readonly Tensor[], offsets: readonly number[]): { inF: number; outF: number } {
  if (x.ndim !== 2) throw new RangeError(`groupedLinear: x must be [rows, in], got [${x.shape}]`);
  if (weights.length === 0) throw new RangeError('groupedLinear: no weights given');
  if (offsets.length !== weights.length + 1) {
    throw new RangeError(`groupedLinear: ${offsets.length} offsets for ${weights.length} weights (need weights + 1)`);
  }
  const [outF, inF] = weights[0].shape;
  weights.forEach((w, e) => {
    if (w.ndim !== 2 || w.shape[0] !== outF || w.shape[1] !== inF) {
      throw new RangeError(`groupedLinear: weight ${e} is [${w.shape}], expected [${outF}, ${inF}]`);
    }
    if (w.dtype !== weights[0].dtype) throw new TypeError(`groupedLinear: weight ${e} is ${w.dtype}, weight 0 is ${weights[0].dtype}`);
  });
  if (x.shape[1] !== inF) throw new RangeError(`groupedLinear: x [${x.shape}] has ${x.shape[1]} features, weights expect ${inF}`);
  if (offsets[0] !== 0 || offsets[offsets.length - 1] !== x.shape[0]) {
    throw new RangeError(`groupedLinear: offsets must run from 0 to ${x.shape[0]} rows, got ${offsets[0]}..${offsets[offsets.length - 1]}`);
  }
  for (let e = 0; e < weights.length; e++) {
    if (!(offsets[e + 1] >= offsets[e])) throw new RangeError(`groupedLinear: offsets decrease at group ${e}`);
  }
  return { inF, outF };
}

/** Rows [from, to) of a 2-D contiguous-row tensor, as a view (no autograd). */
function rowsOf(t: Tensor, from: number, to: number): Tensor {
  return t.viewAs([to - from, t.shape[1]], t.strides, t.offset + from * t.strides[0]);
}

/**
 * y[r] = x[r] · weights[e]ᵀ for r in group e. x [rows, in], weights [out, in]
 * each (float32, float64, or bfloat16 without gradient) → [rows, out].
 * Empty groups cost nothing and their weights get no gradient.
 */
export function groupedLinear(x: Tensor, weights: readonly Tensor[], offsets: readonly number[]): Tensor {
  const { inF, outF } = checkGroups(x, weights, offsets);
  const out = empty([x.shape[0], outF], x.dtype);
  for (let e = 0; e < weights.length; e++) {
    if (offsets[e + 1] === offsets[e]) continue;
    const xs = rowsOf(x, offsets[e], offsets[e + 1]);
    const ys = rowsOf(out, offsets[e], offsets[e + 1]);
    gemmInto(xs, false, weights[e], true, ys, []);
    xs.dispose();
    ys.dispose();
  }
  const xShape = x.shape;
  const wGrad = weights.map((w) => w.requiresGrad && w.dtype !== 'bfloat16');
  return record('groupedLinear', out, [x, ...weights], (g, [sx, ...sw]) => {
    const gx = x.requiresGrad ? zeros(xShape, g.dtype) : null;
    const gws: (Tensor | null)[] = sw.map(() => null);
    for (let e = 0; e < sw.length; e++) {
      const n = offsets[e + 1] - offsets[e];
      if (n === 0) continue;
      const ge = rowsOf(g, offsets[e], offsets[e + 1]);
      if (gx) {
        const gxe = rowsOf(gx, offsets[e], offsets[e + 1]);
        gemmInto(ge, false, sw[e], false, gxe, []); // dx_e = g_e · W_e
        gxe.dispose();
      }
      if (wGrad[e]) {
        const xe = rowsOf(sx, offsets[e], offsets[e + 1]);
        const gw = empty([outF, inF], g.dtype);
        gemmInto(ge, true, xe, false, gw, []); // dW_e = g_eᵀ · x_e
        gws[e] = gw;
        xe.dispose();
      }
      ge.dispose();
    }
    return [gx, ...gws];
  }, [x, ...weights]);
}
