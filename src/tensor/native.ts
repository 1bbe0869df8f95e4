/**
 * Loads the C++ addon (built by node-gyp into build/Release). Op modules view
 * it through their own small typed interfaces, so adding a kernel never
 * means editing a shared type here.
 */
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { existsSync } from 'node:fs';

export interface NativeCore {
  alloc(nbytes: number, zero: boolean): ArrayBuffer;
  free(buffer: ArrayBuffer): void;
  memoryStats(): { bytes: number; blocks: number; peakBytes: number; cachedBytes: number };
  emptyCache(): void;
  setNumThreads(n: number): void;
  numThreads(): number;
  setIsa(isa: 'portable' | 'avx2' | 'avx512'): string;
  cpu: { avx2: boolean; fma: boolean; avx512f: boolean; avx512bw: boolean; avx512bf16: boolean; avx512vnni: boolean; f16c: boolean; amxBf16: boolean; level: string };
}

function findAddon(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  // src/tensor -> repo root; dist/tensor -> repo root.
  for (const root of [join(here, '..', '..'), join(here, '..', '..', '..')]) {
    for (const kind of ['Release', 'Debug']) {
      const p = join(root, 'build', kind, 'seedvl_native.node');
      if (existsSync(p)) return p;
    }
  }
  throw new Error('seedvl: native addon not built (build/Release/seedvl_native.node missing); run `npm install` or `npm run build:native`');
}

const require = createRequire(import.meta.url);

/** The raw addon. Typed views: `native as unknown as MyKernels`. */
export const native: NativeCore & Record<string, unknown> = require(findAddon());

/** Typed access to kernels an op module needs; throws early if one is missing. */
export function kernels<K>(names: readonly (keyof K & string)[]): K {
  for (const n of names) {
    if (typeof native[n] !== 'function') throw new Error(`seedvl: native kernel '${n}' is missing from the addon; rebuild with npm run build:native`);
  }
  return native as unknown as K;
}

export function setNumThreads(n: number): void {
  native.setNumThreads(n);
}
export function numThreads(): number {
  return native.numThreads();
}
/** Native tensor memory: live bytes/blocks, peak, and freed blocks kept for reuse (cachedBytes). */
export function nativeMemory(): { bytes: number; blocks: number; peakBytes: number; cachedBytes: number } {
  return native.memoryStats();
}

/** Returns cached free blocks to the system (SEEDVL_ALLOC_CACHE_MB caps the cache; default 2048). */
export function emptyCache(): void {
  native.emptyCache();
}
