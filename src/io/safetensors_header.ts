/**
 * The safetensors header: parsing with full validation, and building one for
 * writing. Pure functions over bytes; file handling lives in safetensors.ts.
 *
 * Format: 8-byte little-endian header length N, N bytes of UTF-8 JSON
 * (`{"__metadata__": {str: str}, name: {dtype, shape, data_offsets}}`), then
 * the data section; data_offsets are [begin, end) relative to its start.
 */
import type { DType } from '../tensor/dtype.ts';

/** Header larger than this is rejected before reading it (the reference Rust crate's limit). */
export const MAX_HEADER_BYTES = 100_000_000;

export class SafetensorsError extends Error {
  constructor(
    message: string,
    readonly file: string,
    readonly tensor?: string,
  ) {
    super(message);
    this.name = 'SafetensorsError';
  }
}

interface FileDTypeInfo {
  bits: number;
  /** Our dtype, or null where seedvl has no matching tensor type (listed, but get() refuses). */
  ours: DType | null;
}

/** Every dtype of the safetensors spec. BOOL is one byte per element, read as uint8. */
const FILE_DTYPES: Record<string, FileDTypeInfo> = {
  BOOL: { bits: 8, ours: 'uint8' },
  U8: { bits: 8, ours: 'uint8' },
  I8: { bits: 8, ours: 'int8' },
  I16: { bits: 16, ours: null },
  U16: { bits: 16, ours: null },
  F16: { bits: 16, ours: 'float16' },
  BF16: { bits: 16, ours: 'bfloat16' },
  I32: { bits: 32, ours: 'int32' },
  U32: { bits: 32, ours: null },
  F32: { bits: 32, ours: 'float32' },
  F64: { bits: 64, ours: 'float64' },
  I64: { bits: 64, ours: 'int64' },
  U64: { bits: 64, ours: null },
  C64: { bits: 64, ours: null },
  F8_E5M2: { bits: 8, ours: null },
  F8_E4M3: { bits: 8, ours: null },
  F8_E8M0: { bits: 8, ours: null },
  F6_E2M3: { bits: 6, ours: null },
  F6_E3M2: { bits: 6, ours: null },
  F4: { bits: 4, ours: null },
};

/** Our dtype → the file's dtype name when writing. */
export const FILE_DTYPE_OF: Record<DType, string> = {
  float32: 'F32', float64: 'F64', bfloat16: 'BF16', float16: 'F16',
  int32: 'I32', int64: 'I64', uint8: 'U8', int8: 'I8',
};

export function isFileDType(name: string): boolean {
  return Object.prototype.hasOwnProperty.call(FILE_DTYPES, name);
}

/** Our dtype for a file dtype name, or null if seedvl cannot hold it. */
export function dtypeFromFile(name: string): DType | null {
  return isFileDType(name) ? FILE_DTYPES[name].ours : null;
}

export interface TensorEntry {
  name: string;
  /** Our dtype (BOOL → uint8), or null when unsupported (I16, U16, U32, U64, F8_*, …). */
  dtype: DType | null;
  /** The dtype name as written in the file. */
  fileDtype: string;
  shape: number[];
  /** [begin, end) relative to the data section, as in the file. */
  dataOffsets: [number, number];
  /** Absolute offset of the first byte in the file. */
  fileOffset: number;
  byteLength: number;
}

export interface ParsedHeader {
  /** N, the JSON length; the data section starts at 8 + N. */
  headerLength: number;
  dataStart: number;
  metadata: Record<string, string>;
  /** In header order. */
  tensors: TensorEntry[];
}

/** Reads N from the first 8 bytes and checks it against the file size. */
export function readHeaderLength(first8: Uint8Array, fileSize: number, file: string): number {
  if (fileSize < 8 || first8.length < 8) {
    throw new SafetensorsError(`safetensors: ${file}: file is ${fileSize} bytes, too small for the 8-byte header length (truncated?)`, file);
  }
  const n = new DataView(first8.buffer, first8.byteOffset, 8).getBigUint64(0, true);
  if (n > BigInt(fileSize - 8)) {
    throw new SafetensorsError(`safetensors: ${file}: header length ${n} is larger than the file allows (${fileSize} bytes − 8) (truncated or not a safetensors file?)`, file);
  }
  if (n > BigInt(MAX_HEADER_BYTES)) {
    throw new SafetensorsError(`safetensors: ${file}: header length ${n} exceeds the ${MAX_HEADER_BYTES}-byte limit`, file);
  }
  if (n < 2n) throw new SafetensorsError(`safetensors: ${file}: header length ${n} is too small for a JSON object`, file);
  return Number(n);
}

const decoder = new TextDecoder('utf-8', { fatal: true });

function isPlainObject(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

function isSafeUint(x: unknown): x is number {
  return typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;
}

/**
 * Parses and validates a header. `head` holds at least the first 8 + N bytes
 * of a file of `fileSize` bytes. Every problem throws a SafetensorsError that
 * names the file, and the tensor and offsets where one is at fault.
 */
export function parseSafetensorsHeader(head: Uint8Array, fileSize: number, file: string): ParsedHeader {
  const n = readHeaderLength(head, fileSize, file);
  if (head.length < 8 + n) throw new SafetensorsError(`safetensors: ${file}: only ${head.length} header bytes given, need ${8 + n}`, file);
  let text: string;
  try {
    text = decoder.decode(head.subarray(8, 8 + n));
  } catch {
    throw new SafetensorsError(`safetensors: ${file}: header (bytes 8..${8 + n}) is not valid UTF-8`, file);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new SafetensorsError(`safetensors: ${file}: header is not valid JSON: ${(e as Error).message}`, file);
  }
  if (!isPlainObject(json)) throw new SafetensorsError(`safetensors: ${file}: header must be a JSON object, got ${Array.isArray(json) ? 'array' : typeof json}`, file);

  const dataStart = 8 + n;
  const dataBytes = fileSize - dataStart;
  const metadata: Record<string, string> = {};
  const tensors: TensorEntry[] = [];
  for (const [name, raw] of Object.entries(json)) {
    if (name === '__metadata__') {
      if (!isPlainObject(raw)) throw new SafetensorsError(`safetensors: ${file}: __metadata__ must be an object of strings`, file);
      for (const [k, v] of Object.entries(raw)) {
        if (typeof v !== 'string') throw new SafetensorsError(`safetensors: ${file}: __metadata__['${k}'] must be a string, got ${typeof v}`, file);
        metadata[k] = v;
      }
      continue;
    }
    tensors.push(parseEntry(name, raw, dataStart, dataBytes, fileSize, file));
  }
  checkOverlaps(tensors, file);
  return { headerLength: n, dataStart, metadata, tensors };
}

function parseEntry(name: string, raw: unknown, dataStart: number, dataBytes: number, fileSize: number, file: string): TensorEntry {
  const at = `safetensors: ${file}: tensor '${name}'`;
  const fail = (msg: string): never => {
    throw new SafetensorsError(`${at}: ${msg}`, file, name);
  };
  if (!isPlainObject(raw)) fail('entry must be an object with dtype, shape and data_offsets');
  const e = raw as Record<string, unknown>;
  const fileDtype = e.dtype;
  if (typeof fileDtype !== 'string') fail(`dtype must be a string, got ${JSON.stringify(fileDtype)}`);
  if (!isFileDType(fileDtype as string)) fail(`unknown dtype '${fileDtype}' (safetensors dtypes: ${Object.keys(FILE_DTYPES).join(', ')})`);
  const { bits, ours } = FILE_DTYPES[fileDtype as string];

  const shape = e.shape;
  if (!Array.isArray(shape) || !shape.every(isSafeUint)) fail(`shape must be an array of non-negative integers, got ${JSON.stringify(shape)}`);
  let numel = 1;
  for (const d of shape as number[]) {
    numel *= d;
    if (!Number.isSafeInteger(numel * bits)) fail(`shape [${shape}] is too large`);
  }
  const offs = e.data_offsets;
  if (!Array.isArray(offs) || offs.length !== 2 || !offs.every(isSafeUint)) fail(`data_offsets must be [begin, end] non-negative integers, got ${JSON.stringify(offs)}`);
  const [begin, end] = offs as [number, number];
  if (end < begin) fail(`data_offsets [${begin}, ${end}] end before begin`);
  if (end > dataBytes) {
    fail(`data_offsets [${begin}, ${end}] run past the end of the data section (${dataBytes} bytes from file offset ${dataStart}; file is ${fileSize} bytes — truncated?)`);
  }
  if ((numel * bits) % 8 !== 0) fail(`${numel} elements of ${fileDtype} (${bits} bits) do not fill whole bytes`);
  const need = (numel * bits) / 8;
  if (end - begin !== need) fail(`shape [${shape}] ${fileDtype} needs ${need} bytes but data_offsets [${begin}, ${end}] hold ${end - begin}`);
  return {
    name,
    dtype: ours,
    fileDtype: fileDtype as string,
    shape: [...(shape as number[])],
    dataOffsets: [begin, end],
    fileOffset: dataStart + begin,
    byteLength: end - begin,
  };
}

/** Two tensors may not share bytes (empty ranges share none). Gaps are allowed. */
function checkOverlaps(tensors: TensorEntry[], file: string): void {
  const byStart = tensors.filter((t) => t.byteLength > 0).sort((a, b) => a.dataOffsets[0] - b.dataOffsets[0] || a.dataOffsets[1] - b.dataOffsets[1]);
  for (let i = 1; i < byStart.length; i++) {
    const p = byStart[i - 1];
    const t = byStart[i];
    if (t.dataOffsets[0] < p.dataOffsets[1]) {
      throw new SafetensorsError(
        `safetensors: ${file}: tensors '${p.name}' data_offsets [${p.dataOffsets.join(', ')}] and '${t.name}' data_offsets [${t.dataOffsets.join(', ')}] overlap`,
        file,
        t.name,
      );
    }
  }
}

export interface HeaderTensor {
  name: string;
  fileDtype: string;
  shape: readonly number[];
  byteLength: number;
}

/**
 * Lays tensors out for writing: largest element size first (then by name),
 * so with the header padded to 8 bytes every tensor starts aligned to its
 * element size. Returns the header bytes (length prefix included) and each
 * tensor's [begin, end) in write order.
 */
export function buildSafetensorsHeader(
  tensors: HeaderTensor[],
  metadata: Record<string, string> | undefined,
): { header: Uint8Array; order: { name: string; begin: number; end: number }[]; dataBytes: number } {
  const sorted = [...tensors].sort((a, b) => FILE_DTYPES[b.fileDtype].bits - FILE_DTYPES[a.fileDtype].bits || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  // Null prototype: a tensor named '__proto__' becomes an ordinary key.
  const json: Record<string, unknown> = Object.create(null);
  if (metadata && Object.keys(metadata).length > 0) json.__metadata__ = metadata;
  const order: { name: string; begin: number; end: number }[] = [];
  let at = 0;
  for (const t of sorted) {
    json[t.name] = { dtype: t.fileDtype, shape: [...t.shape], data_offsets: [at, at + t.byteLength] };
    order.push({ name: t.name, begin: at, end: at + t.byteLength });
    at += t.byteLength;
  }
  const body = new TextEncoder().encode(JSON.stringify(json));
  const padded = Math.ceil(body.length / 8) * 8;
  const header = new Uint8Array(8 + padded).fill(0x20); // pad with spaces (valid JSON whitespace)
  new DataView(header.buffer).setBigUint64(0, BigInt(padded), true);
  header.set(body, 8);
  return { header, order, dataBytes: at };
}
