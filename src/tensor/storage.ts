/**
 * Storage: one block of device memory shared by a tensor and its views.
 * Reference-counted; the block is returned to its backend the moment the
 * last tensor using it is disposed, never left to the garbage collector.
 */
import { native } from './native.ts';

export type Device = 'cpu';

/** What a backend must provide for memory. Kernels dispatch on `Tensor.device` in src/tensor/ops. */
export interface Backend {
  readonly device: Device;
  alloc(nbytes: number, zero: boolean): ArrayBuffer;
  free(buffer: ArrayBuffer): void;
}

export const cpuBackend: Backend = {
  device: 'cpu',
  alloc: (nbytes, zero) => native.alloc(nbytes, zero),
  free: (buffer) => native.free(buffer),
};

/** How the bytes are owned: by our allocator, by a JS ArrayBuffer (GC), or by a mapping/foreign owner with its own release. */
export type Ownership = 'native' | 'js' | 'external';

export class Storage {
  private refs = 1;
  private released = false;

  constructor(
    readonly buffer: ArrayBuffer,
    readonly nbytes: number,
    readonly backend: Backend = cpuBackend,
    readonly ownership: Ownership = 'native',
    private readonly onRelease?: () => void,
  ) {}

  static allocate(nbytes: number, zero = false, backend: Backend = cpuBackend): Storage {
    return new Storage(backend.alloc(nbytes, zero), nbytes, backend, 'native');
  }

  get device(): Device {
    return this.backend.device;
  }

  get isReleased(): boolean {
    return this.released;
  }

  /** How many tensors share this storage. */
  get refCount(): number {
    return this.released ? 0 : this.refs;
  }

  retain(): this {
    if (this.released) throw new Error('storage: retain after release (use after dispose)');
    this.refs++;
    return this;
  }

  release(): void {
    if (this.released) return;
    if (--this.refs > 0) return;
    this.released = true;
    if (this.ownership === 'native') this.backend.free(this.buffer);
    this.onRelease?.();
  }
}
