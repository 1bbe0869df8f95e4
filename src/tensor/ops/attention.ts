/**
 * Scaled dot-product attention on the native flash kernels (memory linear in
 * sequence length; see native/src/attention_fwd.cc for the tiling).
 *
 * Packed layout (NaViT images, packed training samples): q [T, Hq, D],
 * k and v [T, Hkv, D], where T is the total token count of all sequences
 * concatenated and `cuSeqlens` (prefix sums, length nseq+1, from 0 to T)
 * marks where each sequence starts; tokens attend only within their own
 * sequence. Batch layout: q [B, S, Hq, D], k and v [B, S, Hkv, D], with
 * optional `lengths` (valid tokens per row, right padding): keys past a row's
 * length are masked and query rows past it get zeros. Grouped-query
 * attention when Hq is a multiple of Hkv. q, k, v may be strided views (e.g.
 * slices of a fused QKV projection) as long as the head dim is contiguous.
 */
import { Tensor, empty, contiguousCopy } from '../tensor.ts';
import { record, needsGrad } from '../autograd.ts';
import { kernels } from '../native.ts';
import { matmulPrecision } from './matmul.ts';

type FloatArray = Float32Array | Float64Array;

interface AttentionKernels {
  attentionForward(q: FloatArray, k: FloatArray, v: FloatArray, out: FloatArray, lse: FloatArray, seqStarts: Int32Array,
    seqLens: Int32Array, dims: number[], strides: number[], causal: boolean, scale: number): void;
  attentionBackward(q: FloatArray, k: FloatArray, v: FloatArray, out: FloatArray, dout: FloatArray, lse: FloatArray,
    dq: FloatArray, dk: FloatArray, dv: FloatArray, seqStarts: Int32Array, seqLens: Int32Array, dims: number[],
    strides: number[], causal: boolean, scale: number): void;
  attentionDecode(q: FloatArray, kCache: FloatArray, vCache: FloatArray, lengths: Int32Array, out: FloatArray,
    dims: number[], kStrides: number[], vStrides: number[], scale: number): void;
  attentionForwardBf16(q: Float32Array, k: Float32Array, v: Float32Array, out: Float32Array, lse: Float32Array,
    seqStarts: Int32Array, seqLens: Int32Array, dims: number[], strides: number[], causal: boolean, scale: number): void;
  attentionBf16Available(): boolean;
}
const K = kernels<AttentionKernels>(['attentionForward', 'attentionBackward', 'attentionDecode', 'attentionForwardBf16',
  'attentionBf16Available']);

/**
 * True when `attention` on these inputs runs its products in bf16 on AMX tiles
 * (native/src/attention_amx.cc): float32 inputs, the matmul precision switch at
 * 'bf16' (setMatmulPrecision / SEEDVL_MATMUL_PRECISION), AMX-BF16 usable, and no
 * gradient to record — the backward recomputes the probabilities in f32 from
 * the saved logsumexp, which must then come from the f32 forward too.
 */
export function attentionUsesBf16(q: Tensor, k: Tensor, v: Tensor): boolean {
  return q.dtype === 'float32' && !needsGrad(q, k, v) && matmulPrecision() === 'bf16' && K.attentionBf16Available();
}

export interface AttentionOptions {
  /** Each token attends only to earlier tokens of its own sequence (and itself). */
  causal?: boolean;
  /** Packed layout only: sequence boundaries as prefix sums [0, …, T]. Default: one sequence of T tokens. */
  cuSeqlens?: readonly number[] | Int32Array;
  /** Batch layout only: valid tokens per row (right padding). Default: all S. */
  lengths?: readonly number[] | Int32Array;
  /** Multiplies q·k; default 1/sqrt(D). */
  scale?: number;
}

export interface AttentionDecodeOptions {
  /** Multiplies q·k; default 1/sqrt(D). */
  scale?: number;
}

interface Geometry {
  T: number; Hq: number; Hkv: number; D: number;
  starts: Int32Array; lens: Int32Array;
  causal: boolean; scale: number;
}

const shp = (t: Tensor): string => `[${t.shape}]`;

function checkFloat(op: string, ts: [string, Tensor][]): void {
  const dt = ts[0][1].dtype;
  for (const [name, t] of ts) {
    if (t.dtype !== 'float32' && t.dtype !== 'float64') throw new TypeError(`${op}: ${name} must be float32 or float64, got ${t.dtype} ${shp(t)}`);
    if (t.dtype !== dt) throw new TypeError(`${op}: ${name} is ${t.dtype} but ${ts[0][0]} is ${dt}`);
  }
}

function checkScale(op: string, scale: number | undefined, D: number): number {
  const s = scale ?? 1 / Math.sqrt(D);
  if (typeof s !== 'number' || !Number.isFinite(s)) throw new RangeError(`${op}: scale must be a finite number, got ${scale}`);
  return s;
}

function geometry(q: Tensor, k: Tensor, v: Tensor, opts: AttentionOptions): Geometry {
  const op = 'attention';
  checkFloat(op, [['q', q], ['k', k], ['v', v]]);
  const nd = q.ndim;
  const shapes = `q ${shp(q)}, k ${shp(k)}, v ${shp(v)}`;
  if ((nd !== 3 && nd !== 4) || k.ndim !== nd || v.ndim !== nd) {
    throw new RangeError(`${op}: expected q [T, Hq, D], k/v [T, Hkv, D] or q [B, S, Hq, D], k/v [B, S, Hkv, D]; got ${shapes}`);
  }
  const lead = nd - 2;
  const Hq = q.shape[lead], Hkv = k.shape[lead], D = q.shape[lead + 1];
  const sameLead = q.shape.slice(0, lead).every((d, i) => d === k.shape[i] && d === v.shape[i]);
  if (!sameLead || v.shape[lead] !== Hkv || k.shape[lead + 1] !== D || v.shape[lead + 1] !== D) {
    throw new RangeError(`${op}: shapes do not match (${shapes}; tokens and head dim must agree, k and v must have equal shapes)`);
  }
  if (Hq < 1 || Hkv < 1 || D < 1 || Hq % Hkv !== 0) {
    throw new RangeError(`${op}: query heads ${Hq} must be a positive multiple of kv heads ${Hkv}, head dim ${D} >= 1 (${shapes})`);
  }
  const T = nd === 3 ? q.shape[0] : q.shape[0] * q.shape[1];
  let starts: Int32Array, lens: Int32Array;
  if (nd === 3) {
    if (opts.lengths !== undefined) throw new RangeError(`${op}: 'lengths' is for the batch layout [B, S, H, D]; use cuSeqlens with ${shapes}`);
    const cu = opts.cuSeqlens ?? [0, T];
    const n = cu.length - 1;
    if (n < 1 || cu[0] !== 0 || cu[n] !== T) {
      throw new RangeError(`${op}: cuSeqlens must run from 0 to T = ${T} (got [${Array.from(cu)}]) for ${shapes}`);
    }
    starts = new Int32Array(n);
    lens = new Int32Array(n);
    for (let s = 0; s < n; s++) {
      if (!Number.isInteger(cu[s + 1]) || cu[s + 1] < cu[s]) {
        throw new RangeError(`${op}: cuSeqlens must be non-decreasing integers (got [${Array.from(cu)}])`);
      }
      starts[s] = cu[s];
      lens[s] = cu[s + 1] - cu[s];
    }
  } else {
    if (opts.cuSeqlens !== undefined) throw new RangeError(`${op}: 'cuSeqlens' is for the packed layout [T, H, D]; use lengths with ${shapes}`);
    const [B, S] = q.shape;
    const lengths = opts.lengths ?? new Array<number>(B).fill(S);
    if (lengths.length !== B) throw new RangeError(`${op}: lengths has ${lengths.length} entries for batch ${B} (${shapes})`);
    starts = new Int32Array(B);
    lens = new Int32Array(B);
    for (let b = 0; b < B; b++) {
      if (!Number.isInteger(lengths[b]) || lengths[b] < 0 || lengths[b] > S) {
        throw new RangeError(`${op}: lengths[${b}] = ${lengths[b]} is not in [0, ${S}] (${shapes})`);
      }
      starts[b] = b * S;
      lens[b] = lengths[b];
    }
  }
  return { T, Hq, Hkv, D, starts, lens, causal: !!opts.causal, scale: checkScale(op, opts.scale, D) };
}

/** The operand as the kernel sees it: storage from the first element, token and head strides. */
interface TokenRows { data: FloatArray; st: number; sh: number; copy: Tensor | null }

function storageFrom(t: Tensor): FloatArray {
  const A = t.dtype === 'float64' ? Float64Array : Float32Array;
  const eb = A.BYTES_PER_ELEMENT;
  return new A(t.storage.buffer, t.offset * eb, Math.max(0, Math.floor(t.storage.nbytes / eb) - t.offset));
}

/** [T, H, D] or [B, S, H, D] with a contiguous head dim and one token stride: used in place; otherwise copied. */
function tokenRows(x: Tensor): TokenRows {
  const nd = x.ndim, s = x.strides, sh = x.shape;
  let st: number | null = s[nd - 3];
  if (nd === 4) st = sh[1] === 1 ? s[0] : sh[0] === 1 || s[0] === sh[1] * s[1] ? s[1] : null;
  if (st !== null && (s[nd - 1] === 1 || sh[nd - 1] === 1)) return { data: storageFrom(x), st, sh: s[nd - 2], copy: null };
  const c = contiguousCopy(x);
  return { data: c.data<FloatArray>(), st: sh[nd - 2] * sh[nd - 1], sh: sh[nd - 1], copy: c };
}

function release(rows: TokenRows[]): void {
  for (const r of rows) r.copy?.dispose();
}

/**
 * softmax(scale · q kᵀ + mask) v per sequence and head. Differentiable in q,
 * k and v (flash-attention-2 backward, recomputing the probabilities from the
 * saved logsumexp). Output has q's shape. Under the bf16 matmul precision and
 * without gradients, q, k, v and the probabilities are rounded to bf16 for the
 * two products (f32 softmax and accumulation; see attentionUsesBf16).
 */
export function attention(q: Tensor, k: Tensor, v: Tensor, opts: AttentionOptions = {}): Tensor {
  const g = geometry(q, k, v, opts);
  const out = empty(q.shape, q.dtype);
  const lse = empty([g.T, g.Hq], q.dtype);
  const rows = [tokenRows(q), tokenRows(k), tokenRows(v)];
  try {
    const [rq, rk, rv] = rows;
    const dims = [g.T, g.Hq, g.Hkv, g.D], strides = [rq.st, rq.sh, rk.st, rk.sh, rv.st, rv.sh];
    if (g.scale > 0 && attentionUsesBf16(q, k, v)) {
      K.attentionForwardBf16(rq.data as Float32Array, rk.data as Float32Array, rv.data as Float32Array, out.data<Float32Array>(),
        lse.data<Float32Array>(), g.starts, g.lens, dims, strides, g.causal, g.scale);
    } else {
      K.attentionForward(rq.data, rk.data, rv.data, out.data<FloatArray>(), lse.data<FloatArray>(), g.starts, g.lens, dims,
        strides, g.causal, g.scale);
    }
  } catch (e) {
    out.dispose();
    lse.dispose();
    throw e;
  } finally {
    release(rows);
  }
  record('attention', out, [q, k, v], (gout, [sq, sk, sv, so, sl]) => attentionGrads(g, sq, sk, sv, so, sl, gout), [q, k, v, out, lse]);
  lse.dispose(); // the graph keeps its own reference when it saved it
  return out;
}

function attentionGrads(g: Geometry, q: Tensor, k: Tensor, v: Tensor, out: Tensor, lse: Tensor, gout: Tensor): Tensor[] {
  const dq = empty(q.shape, q.dtype), dk = empty(k.shape, k.dtype), dv = empty(v.shape, v.dtype);
  const rows = [tokenRows(q), tokenRows(k), tokenRows(v), tokenRows(out), tokenRows(gout)];
  try {
    const [rq, rk, rv, ro, rg] = rows;
    K.attentionBackward(rq.data, rk.data, rv.data, ro.data, rg.data, lse.data<FloatArray>(), dq.data<FloatArray>(),
      dk.data<FloatArray>(), dv.data<FloatArray>(), g.starts, g.lens, [g.T, g.Hq, g.Hkv, g.D],
      [rq.st, rq.sh, rk.st, rk.sh, rv.st, rv.sh, ro.st, ro.sh, rg.st, rg.sh], g.causal, g.scale);
  } catch (e) {
    for (const t of [dq, dk, dv]) t.dispose();
    throw e;
  } finally {
    release(rows);
  }
  return [dq, dk, dv];
}

/**
 * Attention of new tokens against a KV cache (no gradient).
 * q: [B, Hq, D] (one new token per sequence) or [B, Tq, Hq, D] (Tq new tokens, causal among themselves).
 * kCache, vCache: [B, Hkv, Smax, D]; positions [0, lengths[b]) are valid and already include the new
 * tokens (the caller copies them into k[b, :, len-Tq:len, :] first). Output has q's shape.
 * Under the bf16 matmul precision, a prefill of B = 1 into an empty cache (lengths = [Tq], Tq >= 16)
 * runs on the bf16 AMX forward kernel like `attention` (see attentionUsesBf16).
 */
export function attentionDecode(q: Tensor, kCache: Tensor, vCache: Tensor, lengths: readonly number[] | Int32Array,
  opts: AttentionDecodeOptions = {}): Tensor {
  const op = 'attentionDecode';
  checkFloat(op, [['q', q], ['kCache', kCache], ['vCache', vCache]]);
  const shapes = `q ${shp(q)}, kCache ${shp(kCache)}, vCache ${shp(vCache)}`;
  if ((q.ndim !== 3 && q.ndim !== 4) || kCache.ndim !== 4 || vCache.shape.some((d, i) => d !== kCache.shape[i]) || vCache.ndim !== 4) {
    throw new RangeError(`${op}: expected q [B, Hq, D] or [B, Tq, Hq, D] and kCache = vCache [B, Hkv, Smax, D]; got ${shapes}`);
  }
  const [B, Hkv, Smax, D] = kCache.shape;
  const Tq = q.ndim === 4 ? q.shape[1] : 1;
  const Hq = q.shape[q.ndim - 2];
  if (q.shape[0] !== B || q.shape[q.ndim - 1] !== D || Hq < 1 || Hkv < 1 || Hq % Hkv !== 0 || Tq < 1) {
    throw new RangeError(`${op}: shapes do not match (${shapes}; batch and head dim must agree, query heads a multiple of kv heads)`);
  }
  if (lengths.length !== B) throw new RangeError(`${op}: lengths has ${lengths.length} entries for batch ${B} (${shapes})`);
  const lens = new Int32Array(B);
  for (let b = 0; b < B; b++) {
    if (!Number.isInteger(lengths[b]) || lengths[b] < Tq || lengths[b] > Smax) {
      throw new RangeError(`${op}: lengths[${b}] = ${lengths[b]} is not in [${Tq}, ${Smax}] (new tokens must already be in the cache; ${shapes})`);
    }
    lens[b] = lengths[b];
  }
  const scale = checkScale(op, opts.scale, D);
  const qc = q.isContiguous ? null : contiguousCopy(q);
  const kc = kCache.strides[3] === 1 || D === 1 ? null : contiguousCopy(kCache);
  const vc = vCache.strides[3] === 1 || D === 1 ? null : contiguousCopy(vCache);
  const kt = kc ?? kCache, vt = vc ?? vCache;
  const out = empty(q.shape, q.dtype);
  try {
    // A prefill into an empty cache (the new tokens are all it holds) is causal
    // self-attention over those tokens: under the bf16 switch it runs on the AMX
    // forward kernel, reading the cache rows in place ([Hkv, Smax, D] strides).
    if (B === 1 && Tq >= 16 && lens[0] === Tq && scale > 0 && attentionUsesBf16(q, kt, vt)) {
      K.attentionForwardBf16((qc ?? q).data<Float32Array>(), storageFrom(kt) as Float32Array, storageFrom(vt) as Float32Array,
        out.data<Float32Array>(), new Float32Array(Tq * Hq), new Int32Array([0]), new Int32Array([Tq]), [Tq, Hq, Hkv, D],
        [Hq * D, D, kt.strides[2], kt.strides[1], vt.strides[2], vt.strides[1]], true, scale);
      return out;
    }
    K.attentionDecode((qc ?? q).data<FloatArray>(), storageFrom(kt), storageFrom(vt), lens, out.data<FloatArray>(),
      [B, Tq, Hq, Hkv, D, Smax], kt.strides.slice(0, 3), vt.strides.slice(0, 3), scale);
  } catch (e) {
    out.dispose();
    throw e;
  } finally {
    qc?.dispose();
    kc?.dispose();
    vc?.dispose();
  }
  return out;
}
