/** Element types a tensor can hold. Compute kernels run in float32 (float64 for
 * gradient checks); bfloat16/float16 are storage formats (weights, checkpoints). */
export type DType = 'float32' | 'float64' | 'bfloat16' | 'float16' | 'int32' | 'int64' | 'uint8' | 'int8';

export type TypedArray =
  | Float32Array
  | Float64Array
  | Uint16Array
  | Int32Array
  | BigInt64Array
  | Uint8Array
  | Int8Array;

interface DTypeInfo {
  bytes: number;
  array: { new (buffer: ArrayBuffer, byteOffset: number, length: number): TypedArray; new (length: number): TypedArray };
  float: boolean;
}

const INFO: Record<DType, DTypeInfo> = {
  float32: { bytes: 4, array: Float32Array, float: true },
  float64: { bytes: 8, array: Float64Array, float: true },
  bfloat16: { bytes: 2, array: Uint16Array, float: true },
  float16: { bytes: 2, array: Uint16Array, float: true },
  int32: { bytes: 4, array: Int32Array, float: false },
  int64: { bytes: 8, array: BigInt64Array as unknown as DTypeInfo['array'], float: false },
  uint8: { bytes: 1, array: Uint8Array, float: false },
  int8: { bytes: 1, array: Int8Array, float: false },
};

export const DTYPES = Object.keys(INFO) as DType[];

export function isDType(x: unknown): x is DType {
  return typeof x === 'string' && x in INFO;
}

export function bytesOf(dtype: DType): number {
  return INFO[dtype].bytes;
}

export function isFloat(dtype: DType): boolean {
  return INFO[dtype].float;
}

/** The TypedArray class that views raw storage of `dtype` (bf16/f16 as Uint16Array). */
export function arrayClass(dtype: DType): DTypeInfo['array'] {
  return INFO[dtype].array;
}

/** Which dtype a JS TypedArray maps to when no dtype is given. */
export function dtypeOfArray(a: TypedArray): DType {
  if (a instanceof Float32Array) return 'float32';
  if (a instanceof Float64Array) return 'float64';
  if (a instanceof Int32Array) return 'int32';
  if (a instanceof BigInt64Array) return 'int64';
  if (a instanceof Uint8Array) return 'uint8';
  if (a instanceof Int8Array) return 'int8';
  if (a instanceof Uint16Array) return 'bfloat16';
  throw new TypeError('unsupported typed array');
}

// bf16 <-> f32 on the JS side, for small conversions (tests, scalars). Bulk
// conversion goes through the native cast kernel.
const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
export function bf16ToF32(h: number): number {
  u32[0] = h << 16;
  return f32[0];
}
export function f32ToBf16(x: number): number {
  f32[0] = x;
  const u = u32[0];
  if ((u & 0x7fffffff) > 0x7f800000) return ((u >>> 16) | 0x40) & 0xffff; // quiet NaN
  return ((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) & 0xffff; // round to nearest even
}
