/**
 * Grouped linear: rows [offsets[e], offsets[e+1]) of x go through weight e.
 * This is how a mixture-of-experts layer runs each expert once on its own
 * contiguous batch of tokens. One op (one graph node) for all groups keeps
 * the backward pass at the size of x: a per-group slice op would make every
 * group's gradient a zero-filled copy of the whole input.
 *
 * Forward runs as one native call for all experts (native/src/grouped_gemm.cc):
 * (expert, column block) tasks shared by the pool, <= 4-row groups on GEMV
 * kernels that stream the weights, larger groups on the GEMM (f32, or the
 * bf16/AMX path under setMatmulPrecision('bf16')). Weights may be separate
 * [out, in] tensors or transposed views of a fused [E, in, out] tensor (the
 * Hub layout); `groupedSwiGLU` also fuses silu(gate) ⊙ up into that call.
 */
import { Tensor, empty, zeros, contiguousCopy, storageBytes, DTYPE_CODE } from '../tensor.ts';
import { record, needsGrad } from '../autograd.ts';
import { kernels } from '../native.ts';
import { gemmInto } from './matmul.ts';
import { swiglu } from './activation.ts';

interface GroupedKernels {
  groupedGemm(
    x: Uint8Array, xOff: number, ldx: number, K: number, N: number, offsets: Int32Array,
    stores: Uint8Array[], desc: Float64Array, wDt: number, out: Uint8Array, outOff: number, ldo: number,
    upStores: Uint8Array[] | null, upDesc: Float64Array | null,
  ): void;
}
let GK: GroupedKernels | null = null;
const groupedKernel = (): GroupedKernels => (GK ??= kernels<GroupedKernels>(['groupedGemm']));

/**
 * 'native' (default): one groupedGemm kernel call for all experts (float32
 * activations with float32 or bfloat16 weights); 'loop': one gemm per expert
 * from JS (the reference the native path is tested and benchmarked against;
 * float64 always takes it). SEEDVL_GROUPED=loop selects it at startup.
 */
export type GroupedImpl = 'native' | 'loop';
let impl: GroupedImpl = process.env.SEEDVL_GROUPED === 'loop' ? 'loop' : 'native';
/** Sets the grouped-linear implementation; returns the previous one. */
export function setGroupedImpl(next: GroupedImpl): GroupedImpl {
  if (next !== 'native' && next !== 'loop') throw new RangeError(`setGroupedImpl: expected 'native' or 'loop', got '${String(next)}'`);
  const prev = impl;
  impl = next;
  return prev;
}

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

/** How the kernel reads a weight [N, K]: rows contiguous (trans) or columns contiguous (a transposed view). */
function weightLayout(w: Tensor): { trans: boolean; ld: number } | null {
  const [N, K] = w.shape, [s0, s1] = w.strides;
  if (s1 === 1 || K === 1) {
    const ld = N === 1 ? K : s0;
    if (ld >= K) return { trans: true, ld };
  }
  if (s0 === 1 || N === 1) {
    const ld = K === 1 ? N : s1;
    if (ld >= N) return { trans: false, ld };
  }
  return null;
}

/** The kernel's weight arguments; weights it cannot read in place are copied (and listed in `owned`). */
function weightArgs(weights: readonly Tensor[], offsets: readonly number[], owned: Tensor[]): { stores: Uint8Array[]; desc: Float64Array } {
  const stores: Uint8Array[] = [];
  const desc = new Float64Array(3 * weights.length);
  let empty8: Uint8Array | null = null;
  for (let e = 0; e < weights.length; e++) {
    if (offsets[e + 1] === offsets[e]) { // never read: no storage lookup or copy
      stores.push((empty8 ??= new Uint8Array(0)));
      continue;
    }
    let w = weights[e];
    let lay = weightLayout(w);
    if (!lay) {
      w = contiguousCopy(w);
      owned.push(w);
      lay = weightLayout(w)!;
    }
    stores.push(storageBytes(w));
    desc[3 * e] = w.offset;
    desc[3 * e + 1] = lay.trans ? 1 : 0;
    desc[3 * e + 2] = lay.ld;
  }
  return { stores, desc };
}

/** Can the native kernel run this product (float32 x, float32/bfloat16 weights)? */
function nativeApplies(x: Tensor, weights: readonly Tensor[]): boolean {
  return impl === 'native' && x.dtype === 'float32' && (weights[0].dtype === 'float32' || weights[0].dtype === 'bfloat16');
}

/**
 * out = groupedGemm(x, gates) or, with `ups`, silu(x·gatesᵀ) ⊙ (x·upsᵀ), per
 * group, in one native call. x float32 [rows, in] (copied when its rows are not unit-stride).
 */
function groupedNative(x: Tensor, gates: readonly Tensor[], ups: readonly Tensor[] | null, offsets: readonly number[], outF: number): Tensor {
  const inF = x.shape[1], rows = x.shape[0];
  const out = empty([rows, outF], 'float32');
  const owned: Tensor[] = [];
  try {
    let xs = x;
    if (!(x.strides[1] === 1 || inF === 1) || (rows > 1 && x.strides[0] < inF)) {
      xs = contiguousCopy(x);
      owned.push(xs);
    }
    const ldx = rows > 1 ? xs.strides[0] : inF;
    const g = weightArgs(gates, offsets, owned);
    const u = ups ? weightArgs(ups, offsets, owned) : null;
    groupedKernel().groupedGemm(
      storageBytes(xs), xs.offset, ldx, inF, outF, Int32Array.from(offsets),
      g.stores, g.desc, DTYPE_CODE[gates[0].dtype], storageBytes(out), out.offset, outF,
      u ? u.stores : null, u ? u.desc : null,
    );
  } catch (err) {
    out.dispose();
    throw err;
  } finally {
    for (const t of owned) t.dispose();
  }
  return out;
}

/**
 * y[r] = x[r] · weights[e]ᵀ for r in group e. x [rows, in], weights [out, in]
 * each (float32, float64, or bfloat16 without gradient) → [rows, out].
 * Empty groups cost nothing and their weights get no gradient.
 */
export function groupedLinear(x: Tensor, weights: readonly Tensor[], offsets: readonly number[]): Tensor {
  const { inF, outF } = checkGroups(x, weights, offsets);
  let out: Tensor;
  if (nativeApplies(x, weights)) {
    out = groupedNative(x, weights, null, offsets, outF);
  } else {
    out = empty([x.shape[0], outF], x.dtype);
    for (let e = 0; e < weights.length; e++) {
      if (offsets[e + 1] === offsets[e]) continue;
      const xs = rowsOf(x, offsets[e], offsets[e + 1]);
      const ys = rowsOf(out, offsets[e], offsets[e + 1]);
      gemmInto(xs, false, weights[e], true, ys, []);
      xs.dispose();
      ys.dispose();
    }
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

/**
 * The SwiGLU front of grouped experts: silu(x[r] · gates[e]ᵀ) ⊙ (x[r] · ups[e]ᵀ)
 * for r in group e → [rows, out]. Without gradients (inference) it runs as one
 * fused native call, so the gate and up products never reach memory; when a
 * gradient is wanted it is composed of groupedLinear and swiglu.
 */
export function groupedSwiGLU(x: Tensor, gates: readonly Tensor[], ups: readonly Tensor[], offsets: readonly number[]): Tensor {
  const { outF } = checkGroups(x, gates, offsets);
  checkGroups(x, ups, offsets);
  if (ups.length !== gates.length || ups[0].shape[0] !== outF || ups[0].dtype !== gates[0].dtype) {
    throw new RangeError(`groupedSwiGLU: ${ups.length} up weights [${ups[0].shape}] (${ups[0].dtype}) for ${gates.length} gate weights [${gates[0].shape}] (${gates[0].dtype})`);
  }
  if (nativeApplies(x, gates) && !needsGrad(x, ...gates, ...ups)) return groupedNative(x, gates, ups, offsets, outF);
  const g = groupedLinear(x, gates, offsets);
  const u = groupedLinear(x, ups, offsets);
  const out = swiglu(g, u);
  g.dispose();
  u.dispose();
  return out;
}
