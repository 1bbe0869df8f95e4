/**
 * Shared helpers for the io tests: temp dirs, tensors with random bit
 * patterns, hand-made safetensors files, and an independent parser that
 * reads a file with readFileSync + DataView (no mmap, no src/io code).
 */
import { mkdtempSync, rmSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';
import { empty, bytesOf, type Tensor, type DType } from '../../src/tensor/index.ts';
import { rng } from '../helpers/gradcheck.ts';

/** A fresh temp directory, removed when the test file finishes. */
export function tempDir(tag: string): string {
  const d = mkdtempSync(join(tmpdir(), `seedvl-io-${tag}-`));
  after(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

/** A tensor whose bytes are random (NaN payloads, denormals, all of it): bit-exact round trips. */
export function randomBitsTensor(shape: number[], dtype: DType, seed: number): Tensor {
  const t = empty(shape, dtype);
  const r = rng(seed);
  const b = new Uint8Array(t.storage.buffer, t.byteOffset, t.storage.nbytes - t.byteOffset);
  for (let i = 0; i < b.length; i++) b[i] = (r() * 256) | 0;
  return t;
}

/** The element bytes of a contiguous tensor (a view, not a copy). */
export function bytesOfTensor(t: Tensor): Uint8Array {
  if (!t.isContiguous) throw new Error('bytesOfTensor: make it contiguous first');
  return new Uint8Array(t.storage.buffer, t.byteOffset, t.size * bytesOf(t.dtype));
}

export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.compare(Buffer.from(a.buffer, a.byteOffset, a.byteLength), Buffer.from(b.buffer, b.byteOffset, b.byteLength)) === 0;
}

/**
 * Writes a hand-made safetensors file: `header` (an object, serialised, or a
 * raw string) padded to 8 bytes, then `data`. `lengthOverride` replaces the
 * 8-byte length field; `truncateTo` cuts the file.
 */
export function craftFile(
  path: string,
  header: unknown,
  data: Uint8Array = new Uint8Array(0),
  opts: { lengthOverride?: bigint; truncateTo?: number; pad?: boolean } = {},
): string {
  let text = typeof header === 'string' ? header : JSON.stringify(header);
  if (opts.pad !== false) while ((Buffer.byteLength(text) % 8) !== 0) text += ' ';
  const hb = Buffer.from(text, 'utf8');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(opts.lengthOverride ?? BigInt(hb.length));
  let file = Buffer.concat([len, hb, Buffer.from(data)]);
  if (opts.truncateTo !== undefined) file = file.subarray(0, opts.truncateTo);
  writeFileSync(path, file);
  return path;
}

export interface RawTensor {
  dtype: string;
  shape: number[];
  bytes: Buffer;
}

/** Independent reader: whole file into memory, DataView for the length, JSON.parse, byte slices. */
export function independentParse(path: string): { metadata: Record<string, string> | undefined; tensors: Map<string, RawTensor> } {
  const buf = readFileSync(path);
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const lo = view.getUint32(0, true);
  const hi = view.getUint32(4, true);
  const n = hi * 2 ** 32 + lo;
  const header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8')) as Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
  const tensors = new Map<string, RawTensor>();
  let metadata: Record<string, string> | undefined;
  for (const [k, v] of Object.entries(header)) {
    if (k === '__metadata__') {
      metadata = v as unknown as Record<string, string>;
      continue;
    }
    tensors.set(k, { dtype: v.dtype, shape: v.shape, bytes: buf.subarray(8 + n + v.data_offsets[0], 8 + n + v.data_offsets[1]) });
  }
  return { metadata, tensors };
}

/** Decodes element `i` of a raw little-endian tensor to a JS number (bf16/f16 by hand). */
export function rawElement(t: RawTensor, i: number): number {
  const b = t.bytes;
  switch (t.dtype) {
    case 'F32': return b.readFloatLE(i * 4);
    case 'F64': return b.readDoubleLE(i * 8);
    case 'I32': return b.readInt32LE(i * 4);
    case 'I64': return Number(b.readBigInt64LE(i * 8));
    case 'U8': case 'BOOL': return b[i];
    case 'I8': return b.readInt8(i);
    case 'BF16': {
      const u = Buffer.alloc(4);
      u.writeUInt16LE(b.readUInt16LE(i * 2), 2);
      return u.readFloatLE(0);
    }
    case 'F16': {
      const h = b.readUInt16LE(i * 2);
      const s = h & 0x8000 ? -1 : 1, e = (h >> 10) & 0x1f, m = h & 0x3ff;
      if (e === 0) return s * m * 2 ** -24;
      if (e === 31) return m ? NaN : s * Infinity;
      return s * (1 + m / 1024) * 2 ** (e - 15);
    }
  }
  throw new Error(`rawElement: dtype ${t.dtype}`);
}
