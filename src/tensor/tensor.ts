/**
 * Tensor: a typed, strided view onto a Storage, with autograd state.
 * Views (reshape, permute, narrow, expand) share storage; `dispose()` drops
 * this tensor's reference, and the memory goes back when the last view is gone.
 */
import { type DType, type TypedArray, arrayClass, bytesOf, dtypeOfArray, bf16ToF32, isDType } from './dtype.ts';
import { Storage, type Device } from './storage.ts';
import { trackTensor } from './scope.ts';
import type { GradNode } from './autograd.ts';
import { native } from './native.ts';

export type Shape = readonly number[];

export const DTYPE_CODE: Record<DType, number> = {
  float32: 0, float64: 1, bfloat16: 2, float16: 3, int32: 4, int64: 5, uint8: 6, int8: 7,
};

export function numelOf(shape: Shape): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function contiguousStrides(shape: Shape): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= shape[i];
  }
  return s;
}

export function checkShape(shape: Shape, op: string): void {
  if (!Array.isArray(shape)) throw new TypeError(`${op}: shape must be an array, got ${typeof shape}`);
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0) throw new RangeError(`${op}: invalid shape [${shape}] (dimensions must be non-negative integers)`);
  }
}

let nextId = 1;

export class Tensor {
  readonly isTensor = true;
  readonly id = nextId++;
  /** Gradient accumulated by backward() (a leaf with requiresGrad). */
  grad: Tensor | null = null;
  /** The node that produced this tensor, if it was recorded for autograd. */
  node: GradNode | null = null;
  requiresGrad = false;
  /** Optional name (parameters: their dotted path), used in error messages. */
  name?: string;
  private _storage: Storage | null;

  constructor(
    storage: Storage,
    readonly dtype: DType,
    readonly shape: Shape,
    readonly strides: Shape = contiguousStrides(shape),
    readonly offset = 0,
    track = true,
  ) {
    this._storage = storage;
    if (track) trackTensor(this);
  }

  get storage(): Storage {
    if (!this._storage) throw new Error(`tensor${this.name ? ` '${this.name}'` : ''} [${this.shape}] used after dispose`);
    return this._storage;
  }
  get isDisposed(): boolean {
    return this._storage === null;
  }
  get device(): Device {
    return this.storage.device;
  }
  get ndim(): number {
    return this.shape.length;
  }
  get size(): number {
    return numelOf(this.shape);
  }
  get isContiguous(): boolean {
    let acc = 1;
    for (let i = this.shape.length - 1; i >= 0; i--) {
      if (this.shape[i] !== 1 && this.strides[i] !== acc) return false;
      acc *= this.shape[i];
    }
    return true;
  }
  get byteOffset(): number {
    return this.offset * bytesOf(this.dtype);
  }

  /** Releases this tensor's reference to its memory (and its graph node). Safe to call twice. */
  dispose(): void {
    if (!this._storage) return;
    this._storage.release();
    this._storage = null;
    const node = this.node;
    if (node) node.unref();
    if (this.grad) {
      this.grad.dispose();
      this.grad = null;
    }
  }

  /** A new tensor object over the same storage and layout, outside any scope (for saved activations). */
  retainedView(): Tensor {
    return new Tensor(this.storage.retain(), this.dtype, this.shape, this.strides, this.offset, false);
  }

  /** A view with another shape/strides over the same storage (no autograd; see ops/view.ts). */
  viewAs(shape: Shape, strides: Shape, offset = this.offset): Tensor {
    return new Tensor(this.storage.retain(), this.dtype, shape, strides, offset);
  }

  /** Zero-copy typed view of the elements; the tensor must be contiguous. bf16/f16 come as raw Uint16Array. */
  data<T extends TypedArray = Float32Array>(): T {
    if (!this.isContiguous) throw new Error(`data(): tensor [${this.shape}] is not contiguous; call contiguous() first`);
    const A = arrayClass(this.dtype);
    return new A(this.storage.buffer, this.byteOffset, this.size) as T;
  }

  /** The elements as a flat array of JS numbers (bf16/f16 decoded, int64 as numbers). */
  toArray(): number[] {
    const t = this.isContiguous ? this : contiguousCopy(this);
    try {
      const d = t.data<TypedArray>();
      if (this.dtype === 'bfloat16') return Array.from(d as Uint16Array, bf16ToF32);
      if (this.dtype === 'float16') {
        const f = empty(this.shape, 'float32');
        try {
          castInto(t, f);
          return Array.from(f.data<Float32Array>());
        } finally {
          f.dispose();
        }
      }
      if (this.dtype === 'int64') return Array.from(d as BigInt64Array, Number);
      return Array.from(d as Float32Array);
    } finally {
      if (t !== this) t.dispose();
    }
  }

  /** The single element of a one-element tensor. */
  item(): number {
    if (this.size !== 1) throw new Error(`item(): tensor has ${this.size} elements, shape [${this.shape}]`);
    return this.toArray()[0];
  }

  toString(): string {
    return `Tensor(${this.dtype}, [${this.shape}]${this.requiresGrad ? ', requiresGrad' : ''})`;
  }
}

// ---------------------------------------------------------------- creation

interface CopyKernels {
  copyStrided(dst: Uint8Array, dOff: number, dStr: number[], src: Uint8Array, sOff: number, sStr: number[], shape: number[], eb: number): void;
  cast(src: Uint8Array, sdt: number, dst: Uint8Array, ddt: number, n: number): void;
  fill(dst: Uint8Array, dt: number, v: number, n: number): void;
  accumulate(dst: Float32Array | Float64Array, src: Float32Array | Float64Array, n: number): void;
}
const K = native as unknown as CopyKernels;

/** Raw bytes of a tensor's whole storage. */
export function storageBytes(t: Tensor): Uint8Array {
  return new Uint8Array(t.storage.buffer, 0, t.storage.nbytes);
}

/** Bytes of a contiguous tensor's elements. */
export function elementBytes(t: Tensor): Uint8Array {
  return new Uint8Array(t.storage.buffer, t.byteOffset, t.size * bytesOf(t.dtype));
}

export function empty(shape: Shape, dtype: DType = 'float32'): Tensor {
  checkShape(shape, 'empty');
  if (!isDType(dtype)) throw new TypeError(`empty: unknown dtype '${dtype}'`);
  return new Tensor(Storage.allocate(numelOf(shape) * bytesOf(dtype)), dtype, [...shape]);
}

export function zeros(shape: Shape, dtype: DType = 'float32'): Tensor {
  checkShape(shape, 'zeros');
  if (!isDType(dtype)) throw new TypeError(`zeros: unknown dtype '${dtype}'`);
  return new Tensor(Storage.allocate(numelOf(shape) * bytesOf(dtype), true), dtype, [...shape]);
}

export function full(shape: Shape, value: number, dtype: DType = 'float32'): Tensor {
  const t = empty(shape, dtype);
  K.fill(elementBytes(t), DTYPE_CODE[dtype], value, t.size);
  return t;
}

export function ones(shape: Shape, dtype: DType = 'float32'): Tensor {
  return full(shape, 1, dtype);
}

export function zerosLike(t: Tensor, dtype: DType = t.dtype): Tensor {
  return zeros(t.shape, dtype);
}
export function onesLike(t: Tensor, dtype: DType = t.dtype): Tensor {
  return full(t.shape, 1, dtype);
}

/**
 * A tensor holding a copy of `data`. Numbers are converted to `dtype`
 * (default float32); a TypedArray keeps its own dtype unless one is given.
 */
export function tensor(data: ArrayLike<number> | TypedArray, shape?: Shape, dtype?: DType): Tensor {
  const n = data.length;
  const shp = shape ?? [n];
  checkShape(shp, 'tensor');
  if (numelOf(shp) !== n) throw new RangeError(`tensor: ${n} values do not fill shape [${shp}] (${numelOf(shp)} elements)`);
  const isTyped = ArrayBuffer.isView(data);
  const srcType: DType = isTyped ? dtypeOfArray(data as TypedArray) : 'float64';
  const dt: DType = dtype ?? (isTyped ? srcType : 'float32');
  const out = empty(shp, dt);
  if (isTyped && srcType === dt) {
    out.data<TypedArray>().set(data as never);
    return out;
  }
  // Convert via a float64 (or source-typed) staging buffer with the native cast.
  const src = isTyped ? (data as TypedArray) : Float64Array.from(data as ArrayLike<number>);
  const srcDt: DType = isTyped ? srcType : 'float64';
  const bytes = new Uint8Array(src.buffer, src.byteOffset, src.byteLength);
  K.cast(bytes, DTYPE_CODE[srcDt], elementBytes(out), DTYPE_CODE[dt], n);
  return out;
}

export function scalar(value: number, dtype: DType = 'float32'): Tensor {
  return full([], value, dtype);
}

export function arange(n: number, dtype: DType = 'float32'): Tensor {
  const a = new Float64Array(n);
  for (let i = 0; i < n; i++) a[i] = i;
  return tensor(a, [n], dtype);
}

/** Copies `src` into a fresh contiguous tensor of the same dtype (no autograd). */
export function contiguousCopy(src: Tensor): Tensor {
  const out = empty(src.shape, src.dtype);
  copyInto(src, out);
  return out;
}

/** Copies the elements of `src` into the (possibly strided) view `dst` of equal shape and dtype. */
export function copyInto(src: Tensor, dst: Tensor): void {
  if (src.dtype !== dst.dtype) throw new TypeError(`copyInto: dtype ${src.dtype} vs ${dst.dtype}`);
  if (src.shape.length !== dst.shape.length || src.shape.some((d, i) => d !== dst.shape[i])) {
    throw new RangeError(`copyInto: shape [${src.shape}] vs [${dst.shape}]`);
  }
  K.copyStrided(storageBytes(dst), dst.offset, [...dst.strides], storageBytes(src), src.offset, [...src.strides], [...src.shape], bytesOf(src.dtype));
}

/** Converts contiguous `src` into contiguous `dst` of the same size (any dtypes). */
export function castInto(src: Tensor, dst: Tensor): void {
  if (src.size !== dst.size) throw new RangeError(`cast: ${src.size} vs ${dst.size} elements`);
  const s = src.isContiguous ? src : contiguousCopy(src);
  try {
    K.cast(elementBytes(s), DTYPE_CODE[s.dtype], elementBytes(dst), DTYPE_CODE[dst.dtype], s.size);
  } finally {
    if (s !== src) s.dispose();
  }
}

/** dst += src in place (float32/float64, same shape, both contiguous). */
export function accumulateInto(dst: Tensor, src: Tensor): void {
  if (dst.dtype !== src.dtype || dst.size !== src.size) {
    throw new RangeError(`accumulate: ${dst.dtype}[${dst.shape}] += ${src.dtype}[${src.shape}]`);
  }
  if (dst.dtype !== 'float32' && dst.dtype !== 'float64') throw new TypeError(`accumulate: unsupported dtype ${dst.dtype}`);
  const s = src.isContiguous ? src : contiguousCopy(src);
  try {
    K.accumulate(dst.data<Float32Array>(), s.data<Float32Array>(), dst.size);
  } finally {
    if (s !== src) s.dispose();
  }
}

/** Wraps an existing ArrayBuffer region (e.g. a memory-mapped file) without copying. */
export function fromBuffer(buffer: ArrayBuffer, byteOffset: number, shape: Shape, dtype: DType, owner?: { release(): void }): Tensor {
  checkShape(shape, 'fromBuffer');
  const eb = bytesOf(dtype);
  if (byteOffset % eb !== 0) throw new RangeError(`fromBuffer: byte offset ${byteOffset} is not aligned to ${dtype} (${eb} bytes)`);
  const need = byteOffset + numelOf(shape) * eb;
  if (need > buffer.byteLength) throw new RangeError(`fromBuffer: [${shape}] ${dtype} at byte ${byteOffset} needs ${need} bytes, buffer has ${buffer.byteLength}`);
  const storage = new Storage(buffer, buffer.byteLength, undefined, owner ? 'external' : 'js', owner ? () => owner.release() : undefined);
  return new Tensor(storage, dtype, [...shape], contiguousStrides(shape), byteOffset / eb);
}
