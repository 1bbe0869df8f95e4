/**
 * A memory-mapped file shared by every tensor read from it. Reference
 * counted: the handle holds one reference and every live slice one more; the
 * pages are unmapped the moment the handle is closed AND the last slice is
 * released, never left to the garbage collector.
 *
 * Mappings are private and copy-on-write by default: a stray write into a
 * tensor changes only this process's copy of that page, never the file (and
 * does not crash). Writing to mapped tensors is still invalid: treat them as
 * read-only.
 */
import { kernels } from '../tensor/native.ts';

interface MmapKernels {
  mmapFile(path: string, readonly?: boolean): ArrayBuffer;
  mmapSlice(map: ArrayBuffer, byteOffset: number, byteLength: number): ArrayBuffer;
  mmapDetach(slice: ArrayBuffer): void;
  munmap(map: ArrayBuffer, slices?: ArrayBuffer[]): void;
  mmapStats(): MmapStats;
}

export interface MmapStats {
  /** Bytes currently mapped (not counted in nativeMemory().bytes). */
  mappedBytes: number;
  mappings: number;
  peakMappedBytes: number;
}

let K: MmapKernels | null = null;
function k(): MmapKernels {
  K ??= kernels<MmapKernels>(['mmapFile', 'mmapSlice', 'mmapDetach', 'munmap', 'mmapStats']);
  return K;
}

export function mmapStats(): MmapStats {
  return k().mmapStats();
}

export interface MapOptions {
  /** Map PROT_READ only: a write to a tensor then kills the process (SIGSEGV) instead of copying the page. */
  readonlyPages?: boolean;
}

export class MappedFile {
  readonly size: number;
  private map: ArrayBuffer | null;
  private refs = 1;
  private closed = false;
  private readonly slices = new Set<ArrayBuffer>();

  constructor(readonly path: string, opts: MapOptions = {}) {
    this.map = k().mmapFile(path, opts.readonlyPages === true);
    this.size = this.map.byteLength;
  }

  get isClosed(): boolean {
    return this.closed;
  }
  /** True once the pages are unmapped. */
  get isUnmapped(): boolean {
    return this.map === null;
  }

  /** A copy-free byte view, for headers and copies; valid only until unmapped, do not keep it. */
  bytes(byteOffset: number, byteLength: number): Uint8Array {
    return new Uint8Array(this.live('bytes'), byteOffset, byteLength);
  }

  /**
   * A new ArrayBuffer over [byteOffset, byteOffset + byteLength) that keeps
   * the mapping alive until `release` is called (exactly once).
   */
  slice(byteOffset: number, byteLength: number): { buffer: ArrayBuffer; release: () => void } {
    const map = this.live('slice');
    if (this.closed) throw new Error(`${this.path}: file handle is closed`);
    const buffer = k().mmapSlice(map, byteOffset, byteLength);
    this.slices.add(buffer);
    this.refs++;
    let released = false;
    return {
      buffer,
      release: () => {
        if (released) return;
        released = true;
        // Detach now: a typed array kept past dispose reads as empty, not stale pages.
        if (this.slices.delete(buffer)) k().mmapDetach(buffer);
        this.unref();
      },
    };
  }

  /** Drops the handle's reference; the pages go when the last slice is released too. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.unref();
  }

  private live(what: string): ArrayBuffer {
    if (!this.map) throw new Error(`${this.path}: ${what}: file is unmapped`);
    return this.map;
  }

  private unref(): void {
    if (--this.refs > 0 || !this.map) return;
    const map = this.map;
    this.map = null;
    k().munmap(map, [...this.slices]);
    this.slices.clear();
  }
}
