/**
 * Test-only reader for the shared golden files. The project's real safetensors
 * module lives in src/io/; this one is deliberately tiny and private to tests:
 * 8-byte little-endian header length, JSON header, raw little-endian data.
 */
import { readFileSync, existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, resolve } from 'node:path';

const here = dirname(fileURLToPath(import.meta.url));
/** `../shared/golden` relative to the repository root. */
export const GOLDEN_DIR = resolve(here, '../../../shared/golden');
export const goldenAvailable = existsSync(GOLDEN_DIR);

export interface GoldenTensor {
  dtype: string;
  shape: number[];
  data: Uint8Array | Float32Array | Int32Array;
}

export function readSafetensors(path: string): Map<string, GoldenTensor> {
  const buf = readFileSync(path);
  const headerLen = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + headerLen).toString('utf8')) as Record<
    string,
    { dtype: string; shape: number[]; data_offsets: [number, number] }
  >;
  const base = 8 + headerLen;
  const out = new Map<string, GoldenTensor>();
  for (const [name, info] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const [a, b] = info.data_offsets;
    const bytes = buf.subarray(base + a, base + b);
    // Copy into a fresh, aligned buffer before viewing it as a typed array.
    const copy = new Uint8Array(bytes);
    let data: GoldenTensor['data'];
    if (info.dtype === 'U8') data = copy;
    else if (info.dtype === 'F32') data = new Float32Array(copy.buffer, 0, copy.byteLength / 4);
    else if (info.dtype === 'I32') data = new Int32Array(copy.buffer, 0, copy.byteLength / 4);
    else continue; // other dtypes are not needed by the processing tests
    out.set(name, { dtype: info.dtype, shape: info.shape, data });
  }
  return out;
}

export function readJson<T>(rel: string): T {
  return JSON.parse(readFileSync(resolve(GOLDEN_DIR, rel), 'utf8')) as T;
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length mismatch ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i]! - b[i]!);
    if (d > m || Number.isNaN(d)) m = Number.isNaN(d) ? Infinity : d;
  }
  return m;
}
