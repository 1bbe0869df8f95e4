/**
 * Matrix products: `matmul` (numpy/torch semantics for >= 2-D operands, with
 * broadcast batch dims) and `linear` (x · weightᵀ + bias, weights in float32
 * or bfloat16), with their gradients. Both run on the native `gemm` kernel,
 * which reads strided views directly when the last two dims are a plain or a
 * transposed matrix, so `transpose(w)` and friends cost no copy.
 */
import { Tensor, empty, full, contiguousCopy, storageBytes, DTYPE_CODE, type Shape } from '../tensor.ts';
import { record } from '../autograd.ts';
import { kernels } from '../native.ts';

interface GemmKernels {
  gemm(
    dt: number, a: Uint8Array, aOff: number, b: Uint8Array, bOff: number, bDt: number,
    c: Uint8Array, cOff: number, desc: Float64Array, alpha: number, beta: number,
    bias: Uint8Array | null, biasOff: number,
  ): void;
}
let K: GemmKernels | null = null;
function gemmKernel(): GemmKernels {
  return (K ??= kernels<GemmKernels>(['gemm']));
}

const fmt = (t: Tensor): string => `[${t.shape}] (${t.dtype})`;

/** A matrix operand: the last two dims of `t` (swapped when `swap`), as the kernel reads it. */
interface Operand {
  t: Tensor;
  rows: number;
  cols: number;
  trans: boolean;
  ld: number;
  /** The tensor to dispose afterwards when `t` is a contiguous copy made here. */
  owned: Tensor | null;
}

/** How the kernel can read the last two dims of `t` (optionally swapped), or null if it cannot. */
function layoutOf(t: Tensor, swap: boolean): { rows: number; cols: number; trans: boolean; ld: number } | null {
  const nd = t.ndim;
  let rows = t.shape[nd - 2], cols = t.shape[nd - 1], rs = t.strides[nd - 2], cs = t.strides[nd - 1];
  if (swap) [rows, cols, rs, cs] = [cols, rows, cs, rs];
  // Row-major: element (i, j) at i*ld + j.
  if (cols <= 1 || cs === 1) return { rows, cols, trans: false, ld: rows <= 1 ? Math.max(cols, 1) : rs };
  // Column-major: element (i, j) at j*ld + i.
  if (rows <= 1 || rs === 1) return { rows, cols, trans: true, ld: cols <= 1 ? Math.max(rows, 1) : cs };
  return null;
}

function operand(t: Tensor, swap: boolean): Operand {
  const l = layoutOf(t, swap);
  if (l) return { t, ...l, owned: null };
  const c = contiguousCopy(t);
  return { t: c, ...layoutOf(c, swap)!, owned: c };
}

/** Broadcast of two batch shapes (numpy rules), or null if they do not broadcast. */
function broadcastBatch(a: Shape, b: Shape): number[] | null {
  const n = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const da = a[a.length - n + i] ?? 1, db = b[b.length - n + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) return null;
    out.push(da === 1 ? db : da);
  }
  return out;
}

/** Strides of t's batch dims (all but the last two) seen through `batch`; 0 where t broadcasts. */
function batchStrides(t: Tensor, batch: readonly number[]): number[] {
  const tb = t.ndim - 2;
  return batch.map((size, i) => {
    const d = i - (batch.length - tb);
    if (d < 0 || t.shape[d] === 1 || size === 1) return 0;
    return t.strides[d];
  });
}

/**
 * C = alpha · op(A) op(B) + beta · C (+ bias) for every index of `batch`:
 * `a` holds op(A) in its last two dims (swapped when swapA), likewise `b`, and
 * `c` the result. Batch dims broadcast from the right; a batch dim along which
 * `c` has size 1 (or is missing) is summed into c. No autograd here.
 */
export function gemmInto(
  a: Tensor, swapA: boolean, b: Tensor, swapB: boolean, c: Tensor, batch: readonly number[],
  beta = 0, bias: Tensor | null = null,
): void {
  const A = operand(a, swapA), B = operand(b, swapB);
  try {
    const M = A.rows, Kd = A.cols, N = B.cols;
    const nc = c.ndim;
    const ldc = c.shape[nc - 2] <= 1 ? Math.max(N, 1) : c.strides[nc - 2];
    if (c.strides[nc - 1] !== 1 && N > 1) throw new Error('gemm: output must have unit column stride');
    const sa = batchStrides(A.t, batch), sb = batchStrides(B.t, batch), sc = batchStrides(c, batch);
    const desc = new Float64Array(9 + 4 * batch.length);
    desc.set([M, N, Kd, A.trans ? 1 : 0, B.trans ? 1 : 0, A.ld, B.ld, ldc, batch.length]);
    batch.forEach((size, i) => desc.set([size, sa[i], sb[i], sc[i]], 9 + 4 * i));
    const dt = c.dtype === 'float64' ? DTYPE_CODE.float64 : DTYPE_CODE.float32;
    gemmKernel().gemm(
      dt, storageBytes(A.t), A.t.offset, storageBytes(B.t), B.t.offset, DTYPE_CODE[B.t.dtype],
      storageBytes(c), c.offset, desc, 1, beta,
      bias ? storageBytes(bias) : null, bias ? bias.offset : 0,
    );
  } finally {
    A.owned?.dispose();
    B.owned?.dispose();
  }
}

function checkFloatPair(op: string, a: Tensor, b: Tensor, what: string): void {
  const ok =
    (a.dtype === 'float32' && (b.dtype === 'float32' || b.dtype === 'bfloat16')) ||
    (a.dtype === 'float64' && b.dtype === 'float64');
  if (!ok) {
    throw new TypeError(
      `${op}: unsupported dtypes ${fmt(a)} and ${what}${fmt(b)} (float32 with float32 or bfloat16, or float64 with float64)`,
    );
  }
}

/**
 * Matrix product with numpy/torch semantics for operands of at least 2 dims:
 * [..., M, K] @ [..., K, N] -> [broadcast(...), M, N]. 1-D operands are not
 * supported (unsqueeze them). float32 @ float32|bfloat16 or float64 @ float64;
 * a bfloat16 right operand gets no gradient.
 */
export function matmul(a: Tensor, b: Tensor): Tensor {
  if (!(a instanceof Tensor) || !(b instanceof Tensor)) throw new TypeError('matmul: both operands must be Tensors');
  if (a.ndim < 2 || b.ndim < 2) {
    throw new RangeError(`matmul: operands must have at least 2 dims, got ${fmt(a)} @ ${fmt(b)} (1-D operands are not supported; unsqueeze them)`);
  }
  checkFloatPair('matmul', a, b, '');
  const M = a.shape[a.ndim - 2], Kd = a.shape[a.ndim - 1], Kb = b.shape[b.ndim - 2], N = b.shape[b.ndim - 1];
  if (Kd !== Kb) throw new RangeError(`matmul: inner dims differ: ${fmt(a)} @ ${fmt(b)} (${Kd} vs ${Kb})`);
  const aBatch = a.shape.slice(0, -2), bBatch = b.shape.slice(0, -2);
  const batch = broadcastBatch(aBatch, bBatch);
  if (!batch) throw new RangeError(`matmul: batch dims [${aBatch}] and [${bBatch}] do not broadcast: ${fmt(a)} @ ${fmt(b)}`);
  const out = empty([...batch, M, N], a.dtype);
  gemmInto(a, false, b, false, out, batch);
  // Gradients only for operands that want them (decided when the graph is recorded).
  const aShape = a.shape, bShape = b.shape, aGrad = a.requiresGrad, bGrad = b.requiresGrad && b.dtype !== 'bfloat16';
  return record('matmul', out, [a, b], (g, [sa, sb]) => {
    // dA = g · bᵀ and dB = aᵀ · g, summed over the batch dims each operand was broadcast along.
    let ga: Tensor | null = null;
    if (aGrad) {
      ga = empty(aShape, g.dtype);
      gemmInto(g, false, sb, true, ga, batch);
    }
    let gb: Tensor | null = null;
    if (bGrad) {
      gb = empty(bShape, g.dtype);
      gemmInto(sa, true, g, false, gb, batch);
    }
    return [ga, gb];
  }, [a, b]);
}

/**
 * `t` [..., last] as a 2-D [rows, last] tensor: a view when the leading dims
 * merge (the usual case), else a contiguous copy. The caller disposes it.
 */
function rowsView(t: Tensor, last: number): Tensor {
  const nd = t.ndim;
  if (nd === 1) return t.viewAs([1, last], [last, t.strides[0]]);
  // Leading dims merge when each non-unit one steps over the inner ones exactly.
  let stride = last, rows = 1, ok = true;
  for (let d = nd - 2; d >= 0; d--) {
    const n = t.shape[d];
    if (n === 1) continue;
    if (rows === 1) stride = t.strides[d];
    else if (t.strides[d] !== stride * rows) ok = false;
    rows *= n;
  }
  ok ||= rows === 0;
  if (ok) return t.viewAs([rows, last], [rows <= 1 ? last : stride, t.strides[nd - 1]]);
  const c = contiguousCopy(t);
  const v = c.viewAs([rows, last], [last, 1]);
  c.dispose();
  return v;
}

/**
 * x · weightᵀ + bias: x [..., in], weight [out, in] (float32, or bfloat16 for
 * inference: no gradient for it), bias [out] -> [..., out]. The bias is added
 * by the kernel as it writes the result.
 */
export function linear(x: Tensor, weight: Tensor, bias?: Tensor | null): Tensor {
  if (!(x instanceof Tensor) || !(weight instanceof Tensor)) throw new TypeError('linear: x and weight must be Tensors');
  if (x.ndim < 1 || weight.ndim !== 2) {
    throw new RangeError(`linear: expected x [..., in] and weight [out, in], got x ${fmt(x)} and weight ${fmt(weight)}`);
  }
  checkFloatPair('linear', x, weight, 'weight ');
  const inF = weight.shape[1], outF = weight.shape[0];
  if (x.shape[x.ndim - 1] !== inF) {
    throw new RangeError(`linear: x ${fmt(x)} has ${x.shape[x.ndim - 1]} features, weight ${fmt(weight)} expects ${inF}`);
  }
  if (bias != null) {
    if (!(bias instanceof Tensor) || bias.ndim !== 1 || bias.shape[0] !== outF || bias.dtype !== x.dtype) {
      throw new RangeError(`linear: bias must be [${outF}] ${x.dtype}, got ${bias instanceof Tensor ? fmt(bias) : typeof bias} (x ${fmt(x)}, weight ${fmt(weight)})`);
    }
  }
  const outShape = [...x.shape.slice(0, -1), outF];
  const out = empty(outShape, x.dtype);
  const x2 = rowsView(x, inF);
  const out2 = out.viewAs([x2.shape[0], outF], [outF, 1]);
  const b = bias == null ? null : bias.strides[0] === 1 || outF <= 1 ? bias : contiguousCopy(bias);
  try {
    gemmInto(x2, false, weight, true, out2, [], 0, b);
  } finally {
    if (b && b !== bias) b.dispose();
    x2.dispose();
    out2.dispose();
  }
  // Gradients only for inputs that want them (decided when the graph is recorded).
  const xShape = x.shape, hasBias = bias != null;
  const xGrad = x.requiresGrad, wGrad = weight.requiresGrad && weight.dtype !== 'bfloat16', bGrad = hasBias && bias!.requiresGrad;
  const inputs = hasBias ? [x, weight, bias!] : [x, weight];
  return record('linear', out, inputs, (g, [sx, sw]) => {
    const g2 = rowsView(g, outF), xr = rowsView(sx, inF);
    const rows = g2.shape[0];
    let gx: Tensor | null = null;
    if (xGrad) {
      gx = empty(xShape, g.dtype);
      const gx2 = gx.viewAs([rows, inF], [inF, 1]);
      gemmInto(g2, false, sw, false, gx2, []); // dx = g · W
      gx2.dispose();
    }
    let gw: Tensor | null = null;
    if (wGrad) {
      gw = empty([outF, inF], g.dtype);
      gemmInto(g2, true, xr, false, gw, []); // dW = gᵀ · x over all rows
    }
    let gb: Tensor | null = null;
    if (bGrad) {
      // dbias = 1ᵀ · g: a one-row product, which the kernel streams as a GEMV.
      const ones = full([1, rows], 1, g.dtype);
      gb = empty([outF], g.dtype);
      const gb2 = gb.viewAs([1, outF], [outF, 1]);
      gemmInto(ones, false, g2, false, gb2, []);
      gb2.dispose();
      ones.dispose();
    }
    g2.dispose();
    xr.dispose();
    return hasBias ? [gx, gw, gb] : [gx, gw];
  }, [x, weight]);
}

// ------------------------------------------------ opt-in bf16-compute GEMM switch

interface PrecisionKernels {
  setMatmulPrecision(p: string): 'f32' | 'bf16';
  matmulPrecision(): 'f32' | 'bf16';
}
let PK: PrecisionKernels | null = null;
const precisionKernels = (): PrecisionKernels => (PK ??= kernels<PrecisionKernels>(['setMatmulPrecision', 'matmulPrecision']));

/**
 * Process-wide precision of float32 x bfloat16-weight products with more than
 * 4 rows (`linear` with bf16 weights): 'f32' (default) converts the weights to
 * f32 and runs f32 FMA; 'bf16' rounds the activations to bf16 (nearest even)
 * and multiplies on AMX tiles (CPUs with amx_bf16, Linux permission granted)
 * or with AVX512-BF16 dot products (avx512_bf16), f32 accumulation and output;
 * elsewhere it stays f32. Denormal bf16 inputs count as zero in both kernels.
 * Measure before relying on the vdpbf16ps kernel: on some CPUs its FLOP rate
 * is below the f32 FMA path's (bench/gemm_bf16.bench.ts).
 * Also set by the environment variable SEEDVL_MATMUL_PRECISION=bf16.
 * Returns the previous setting.
 */
export function setMatmulPrecision(precision: 'f32' | 'bf16'): 'f32' | 'bf16' {
  if (precision !== 'f32' && precision !== 'bf16') {
    throw new RangeError(`setMatmulPrecision: expected 'f32' or 'bf16', got '${String(precision)}'`);
  }
  return precisionKernels().setMatmulPrecision(precision);
}

/** The current setting of setMatmulPrecision. */
export function matmulPrecision(): 'f32' | 'bf16' {
  return precisionKernels().matmulPrecision();
}
