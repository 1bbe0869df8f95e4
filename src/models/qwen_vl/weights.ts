/**
 * Hands out a checkpoint's tensors under our canonical names (sanitize.ts), in
 * the dtype each use needs, checking shapes, and remembering which Hub tensors
 * were used so that leftovers are reported.
 *
 * - Matrices (Linear weights, embedding tables) stay in their stored dtype:
 *   bf16 and f32 are zero-copy views of the memory-mapped file (the kernels
 *   read bf16 directly); f16 is converted to f32 once. With `dtype: 'float32'`
 *   every matrix is converted to an f32 copy instead (for comparisons).
 * - Vectors (biases, norm weights) are small and become f32 copies (the norm
 *   and bias kernels take the activation dtype).
 * - Linear weights of a quantised directory (`seedvl quantize`, listed in
 *   config.json's quantization_config) are stored as `<module>.qweight` +
 *   `<module>.scales`; they are named `<module>.weight` here (so sanitize and
 *   the leftover check see one tensor) and handed out by quantizedMatrix as
 *   zero-copy views of the packed tensors.
 * Errors name the file and the tensor.
 */
import type { CheckpointReader } from '../../io/checkpoint.ts';
import { Tensor, empty, castInto, contiguousCopy } from '../../tensor/index.ts';
import { reshape, narrow, select, transpose } from '../../tensor/ops/view.ts';
import { quantizedWeightFrom, type QuantBits, type QuantizedWeight } from '../../tensor/ops/quant.ts';
import { sanitizeNames, type WeightRef } from './sanitize.ts';

export class WeightError extends Error {
  constructor(message: string, readonly file: string, readonly tensor: string) {
    super(message);
    this.name = 'WeightError';
  }
}

export interface WeightStoreOptions {
  /** 'stored' (default): keep bf16/f32 matrices as stored; 'float32': convert all to f32 copies. */
  dtype?: 'stored' | 'float32';
  numExperts?: number;
  /**
   * Fused experts: 'view' (default) hands out transposed views of the stored
   * tensor (zero-copy, stays memory-mapped); 'copy' makes one contiguous bf16
   * [out, in] copy per expert weight (what transformers does on load): memory
   * the size of the experts, for GEMVs that stream contiguous rows.
   */
  expertLayout?: 'view' | 'copy';
  /** Linear weights stored quantised: Hub module names (`model.layers.0.self_attn.q_proj`) with `.qweight` + `.scales` tensors. */
  quantized?: { bits: QuantBits; modules: readonly string[] };
}

/** The Hub module of a Linear weight name (`X.weight` → `X`). */
const moduleOf = (hubWeight: string): string => hubWeight.replace(/\.weight$/, '');
/** Fused expert tensors ([E, …] for all experts of a layer) are named without `.weight`; their quantised form too. */
const isFusedExperts = (hub: string): boolean => /\.mlp\.experts\.(gate_up_proj|down_proj)$/.test(hub);

/** Something that yields tensors by Hub name (a checkpoint reader, or an in-memory map in tests). */
export interface TensorSource {
  readonly dir: string;
  names(): string[];
  get(name: string): Tensor;
  /** The file a tensor lives in (for messages). */
  fileOf(name: string): string;
}

export function readerSource(r: CheckpointReader): TensorSource {
  return { dir: r.dir, names: () => r.names(), get: (n) => r.get(n), fileOf: (n) => `${r.dir}/${r.info(n).file}` };
}

const f32Copy = (t: Tensor): Tensor => {
  const out = empty(t.shape, 'float32');
  castInto(t, out);
  return out;
};

export class WeightStore {
  readonly refs: Map<string, WeightRef>;
  private readonly usedHub = new Set<string>();
  /** Fused expert tensors, fetched once per layer and released when all their views exist. */
  private readonly fused = new Map<string, Tensor>();
  /** Every tensor handed out, released by abort() when building fails. */
  private readonly given: Tensor[] = [];

  /** Hub modules whose weight is stored quantised. */
  private readonly quantMods: Set<string>;

  constructor(readonly src: TensorSource, readonly opts: WeightStoreOptions = {}) {
    this.quantMods = new Set(opts.quantized?.modules ?? []);
    const { refs, unknown } = sanitizeNames(this.hubNames(), opts.numExperts ?? 0);
    if (unknown.length) {
      const n = unknown[0];
      throw new WeightError(`${this.fileOf(n)}: tensor '${n}' is not part of a Qwen-VL checkpoint${unknown.length > 1 ? ` (and ${unknown.length - 1} more: ${unknown.slice(1, 4).join(', ')}${unknown.length > 4 ? ', …' : ''})` : ''}`, this.fileOf(n), n);
    }
    this.refs = refs;
  }

  /** The source's names, with each quantised module's `.qweight` + `.scales` pair shown as one `.weight`. */
  private hubNames(): string[] {
    const names = this.src.names();
    if (!this.quantMods.size) return names;
    const present = new Set(names);
    for (const m of this.quantMods) {
      for (const part of ['qweight', 'scales']) {
        if (!present.has(`${m}.${part}`)) {
          throw new WeightError(`${this.src.dir}: config.json's quantization_config lists '${m}', but tensor '${m}.${part}' is missing`, this.src.dir, `${m}.${part}`);
        }
      }
      const float = isFusedExperts(m) ? m : `${m}.weight`;
      if (present.has(float)) {
        throw new WeightError(`${this.src.fileOf(float)}: '${m}' is listed as quantised but the float tensor '${float}' is stored too`, this.src.fileOf(float), float);
      }
    }
    const packed = (n: string): boolean => {
      const m = /^(.*)\.(qweight|scales)$/.exec(n);
      return !!m && this.quantMods.has(m[1]!);
    };
    return [...names.filter((n) => !packed(n)), ...[...this.quantMods].map((m) => (isFusedExperts(m) ? m : `${m}.weight`))];
  }

  /** Where a Hub tensor lives, for messages (a quantised weight: its packed tensor's file). */
  private fileOf(hub: string): string {
    if (this.quantMods.has(hub) && isFusedExperts(hub)) return this.src.fileOf(`${hub}.qweight`);
    return this.quantMods.has(moduleOf(hub)) && hub.endsWith('.weight') ? this.src.fileOf(`${moduleOf(hub)}.qweight`) : this.src.fileOf(hub);
  }

  /**
   * A Linear weight [out, in] stored quantised, as a QuantizedWeight around the
   * stored packed tensors (no copy; the group size follows from the scales'
   * shape); null when the weight is stored as a float matrix (use matrix()).
   */
  quantizedMatrix(name: string, shape: readonly [number, number]): QuantizedWeight | null {
    const r = this.refs.get(name);
    if (r && (r.kind === 'gate_up' || r.kind === 'down') && this.quantMods.has(r.hub)) return this.quantizedExpert(name, r, shape);
    if (!r || r.kind !== 'plain' || !this.quantMods.has(moduleOf(r.hub))) return null;
    this.usedHub.add(r.hub);
    const m = moduleOf(r.hub);
    const file = this.fileOf(r.hub);
    const q = this.src.get(`${m}.qweight`);
    const scales = this.src.get(`${m}.scales`);
    try {
      const [N, K] = shape;
      const groups = scales.ndim === 2 ? scales.shape[1]! : 0;
      if (scales.ndim !== 2 || scales.shape[0] !== N || groups <= 0 || K % groups !== 0) {
        throw new RangeError(`scales [${scales.shape}] do not fit the [${N}, ${K}] weight config.json implies for ${name}`);
      }
      const qw = quantizedWeightFrom(q, scales, this.opts.quantized!.bits, K / groups, [N, K]);
      this.give(q);
      this.give(scales);
      return qw;
    } catch (e) {
      q.dispose();
      scales.dispose();
      throw new WeightError(`${file}: quantised weight '${m}.qweight' / '${m}.scales': ${(e as Error).message}`, file, `${m}.qweight`);
    }
  }

  has(name: string): boolean {
    return this.refs.has(name);
  }

  private ref(name: string, shape: readonly number[]): WeightRef {
    const r = this.refs.get(name);
    if (!r) {
      throw new WeightError(`${this.src.dir}: missing tensor for '${name}' (shape [${shape}]); the checkpoint does not match its config.json`, this.src.dir, name);
    }
    return r;
  }

  private checkShape(name: string, r: WeightRef, t: Tensor, shape: readonly number[]): void {
    if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
      const what = r.kind === 'plain' ? '' : ` (from '${r.hub}')`;
      throw new WeightError(`${this.src.fileOf(r.hub)}: tensor '${r.hub}'${what} has shape [${t.shape}], config.json implies [${shape}] for ${name}`, this.src.fileOf(r.hub), r.hub);
    }
  }

  private checkFloat(r: WeightRef, t: Tensor): void {
    if (!['float32', 'bfloat16', 'float16', 'float64'].includes(t.dtype)) {
      throw new WeightError(`${this.src.fileOf(r.hub)}: tensor '${r.hub}' has dtype ${t.dtype}; expected a float type`, this.src.fileOf(r.hub), r.hub);
    }
  }

  /** A matrix (Linear weight, embedding, position table) of the given shape. */
  matrix(name: string, shape: readonly number[]): Tensor {
    const r = this.ref(name, shape);
    this.usedHub.add(r.hub);
    let t: Tensor;
    if ((r.kind === 'plain' && this.quantMods.has(moduleOf(r.hub))) || (r.kind !== 'plain' && this.quantMods.has(r.hub))) {
      throw new WeightError(`${this.fileOf(r.hub)}: '${moduleOf(r.hub)}' is stored quantised (.qweight/.scales), but ${name} is not a Linear weight that can run quantised`, this.fileOf(r.hub), r.hub);
    }
    if (r.kind === 'plain' || r.kind === 'conv') {
      const raw = this.src.get(r.hub);
      this.checkFloat(r, raw);
      t = r.kind === 'conv' && raw.ndim > 2 ? reshapeOwned(raw, [raw.shape[0], raw.size / raw.shape[0]]) : raw;
    } else {
      t = this.expertView(r);
      if (this.opts.expertLayout === 'copy') {
        const c = contiguousCopy(t);
        t.dispose();
        t = c;
      }
    }
    try {
      this.checkShape(name, r, t, shape);
    } catch (e) {
      t.dispose();
      throw e;
    }
    const wantF32 = this.opts.dtype === 'float32' ? t.dtype !== 'float32' : t.dtype === 'float16' || t.dtype === 'float64';
    if (!wantF32) return this.give(t);
    const c = f32Copy(t);
    t.dispose();
    return this.give(c);
  }

  /** A vector (bias, norm weight) as an f32 copy. */
  vector(name: string, length: number): Tensor {
    const r = this.ref(name, [length]);
    this.usedHub.add(r.hub);
    const raw = this.src.get(r.hub);
    try {
      this.checkFloat(r, raw);
      this.checkShape(name, r, raw, [length]);
      return this.give(f32Copy(raw));
    } finally {
      raw.dispose();
    }
  }

  private give(t: Tensor): Tensor {
    this.given.push(t);
    return t;
  }

  optionalVector(name: string, length: number): Tensor | null {
    return this.refs.has(name) ? this.vector(name, length) : null;
  }

  /**
   * One expert's quantised Linear weight out of a layer's fused packed tensors: `<hub>.qweight`
   * [E, rows, packed K] and `<hub>.scales` [E, rows, K/G], rows = gate then up ([2I]) or down ([H])
   * — views, no copy (quant_checkpoint.ts writes them).
   */
  private quantizedExpert(name: string, r: Extract<WeightRef, { kind: 'gate_up' | 'down' }>, shape: readonly [number, number]): QuantizedWeight {
    this.usedHub.add(r.hub);
    const file = this.fileOf(r.hub);
    const base = (part: 'qweight' | 'scales'): Tensor => {
      const key = `${r.hub}.${part}`;
      let t = this.fused.get(key);
      if (!t) {
        t = this.src.get(key);
        this.fused.set(key, t);
      }
      return t;
    };
    const q = base('qweight'), scales = base('scales');
    const [N, K] = shape;
    const rows = r.kind === 'down' ? N : 2 * N;
    try {
      if (q.ndim !== 3 || scales.ndim !== 3 || q.shape[0] !== scales.shape[0] || q.shape[1] !== rows || scales.shape[1] !== rows) {
        throw new RangeError(`qweight [${q.shape}] / scales [${scales.shape}] are not [E, ${rows}, …] as config.json implies for ${name}`);
      }
      if (r.expert >= q.shape[0]) throw new RangeError(`${q.shape[0]} experts stored, config.json has more`);
      const groups = scales.shape[2]!;
      if (groups <= 0 || K % groups !== 0) throw new RangeError(`scales [${scales.shape}] do not fit the [${N}, ${K}] weight of ${name}`);
      const first = r.kind === 'gate_up' ? r.half * N : 0;
      const view = (t: Tensor): Tensor => {
        const e = select(t, 0, r.expert);
        const v = narrow(e, 0, first, N);
        e.dispose();
        return v;
      };
      const qv = view(q), sv = view(scales);
      try {
        const qw = quantizedWeightFrom(qv, sv, this.opts.quantized!.bits, K / groups, [N, K]);
        this.give(qv);
        this.give(sv);
        return qw;
      } catch (e) {
        qv.dispose();
        sv.dispose();
        throw e;
      }
    } catch (e) {
      throw new WeightError(`${file}: quantised experts '${r.hub}.qweight' / '${r.hub}.scales': ${(e as Error).message}`, file, `${r.hub}.qweight`);
    }
  }

  private expertView(r: Extract<WeightRef, { kind: 'gate_up' | 'down' }>): Tensor {
    let base = this.fused.get(r.hub);
    if (!base) {
      base = this.src.get(r.hub);
      this.checkFloat(r, base);
      if (base.ndim !== 3) {
        throw new WeightError(`${this.src.fileOf(r.hub)}: tensor '${r.hub}' has shape [${base.shape}]; fused experts must be 3-D [E, in, out]`, this.src.fileOf(r.hub), r.hub);
      }
      this.fused.set(r.hub, base);
    }
    if (r.expert >= base.shape[0]) {
      throw new WeightError(`${this.src.fileOf(r.hub)}: tensor '${r.hub}' has ${base.shape[0]} experts, config.json has more`, this.src.fileOf(r.hub), r.hub);
    }
    const e = select(base, 0, r.expert);                               // [in, out] as used in x @ W[e]
    let v: Tensor;
    if (r.kind === 'down') v = transpose(e, 0, 1);                       // [H, I] Linear layout
    else {
      const I = base.shape[2] / 2;
      const half = narrow(e, 1, r.half * I, I);                          // gate = columns [0, I), up = [I, 2I)
      v = transpose(half, 0, 1);                                         // [I, H]
      half.dispose();
    }
    e.dispose();
    return v;
  }

  /** Hub tensors nobody asked for (the checkpoint has weights the config does not describe). */
  unused(): string[] {
    const out = new Set<string>();
    for (const r of this.refs.values()) if (!this.usedHub.has(r.hub)) out.add(r.hub);
    return [...out];
  }

  /** Releases the fused expert bases (their views keep the memory alive) and checks for leftovers. */
  finish(): void {
    for (const t of this.fused.values()) t.dispose();
    this.fused.clear();
    const left = this.unused();
    if (left.length) {
      const n = left[0];
      throw new WeightError(`${this.fileOf(n)}: tensor '${n}' is not used by the model described in config.json${left.length > 1 ? ` (and ${left.length - 1} more)` : ''}`, this.fileOf(n), n);
    }
    this.given.length = 0;
  }

  /** After a failure: releases every tensor handed out and the fetched bases. */
  abort(): void {
    for (const t of this.fused.values()) t.dispose();
    this.fused.clear();
    for (const t of this.given) t.dispose();
    this.given.length = 0;
  }
}

function reshapeOwned(t: Tensor, shape: number[]): Tensor {
  const v = reshape(t, shape);
  if (v !== t) t.dispose();
  return v;
}
