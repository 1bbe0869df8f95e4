/**
 * Reading and writing .safetensors files.
 *
 * Reading maps the file (mapped_file.ts) and hands out zero-copy tensors over
 * the mapping. Those tensors are READ-ONLY by convention: writing to one is
 * invalid (with the default copy-on-write mapping it silently changes only
 * this process's copy of the page; the file is never modified). Use
 * `get(name, { copy: true })` for a tensor in ordinary native memory.
 *
 * Writing streams each tensor's bytes to a temporary file that is fsynced and
 * renamed over the target (atomic_write.ts).
 */
import { Tensor, empty, fromBuffer, contiguousCopy } from '../tensor/tensor.ts';
import { bytesOf, isDType, type DType } from '../tensor/dtype.ts';
import { MappedFile, type MapOptions } from './mapped_file.ts';
import { writeFileAtomic } from './atomic_write.ts';
import {
  SafetensorsError, FILE_DTYPE_OF, buildSafetensorsHeader, parseSafetensorsHeader, readHeaderLength,
  type TensorEntry, type HeaderTensor,
} from './safetensors_header.ts';

export { SafetensorsError, type TensorEntry } from './safetensors_header.ts';
export { mmapStats, type MmapStats } from './mapped_file.ts';

export interface GetOptions {
  /** Copy into native memory instead of viewing the mapping (the tensor is then writable). */
  copy?: boolean;
}

/** An open .safetensors file. Tensors from `get` stay valid after `close()`; the file is unmapped once both happened. */
export class SafetensorsFile {
  readonly metadata: Readonly<Record<string, string>>;
  /** Every tensor of the header, in header order. */
  readonly tensors: readonly TensorEntry[];
  readonly headerLength: number;
  private readonly byName: Map<string, TensorEntry>;

  private constructor(
    readonly path: string,
    private readonly file: MappedFile,
    parsed: ReturnType<typeof parseSafetensorsHeader>,
  ) {
    this.metadata = parsed.metadata;
    this.tensors = parsed.tensors;
    this.headerLength = parsed.headerLength;
    this.byName = new Map(parsed.tensors.map((t) => [t.name, t]));
  }

  static open(path: string, opts: MapOptions = {}): SafetensorsFile {
    let file: MappedFile;
    try {
      file = new MappedFile(path, opts);
    } catch (e) {
      throw new SafetensorsError(`safetensors: ${(e as Error).message}`, path);
    }
    try {
      const n = readHeaderLength(file.bytes(0, Math.min(8, file.size)), file.size, path);
      return new SafetensorsFile(path, file, parseSafetensorsHeader(file.bytes(0, 8 + n), file.size, path));
    } catch (e) {
      file.close();
      throw e;
    }
  }

  get size(): number {
    return this.file.size;
  }
  get isClosed(): boolean {
    return this.file.isClosed;
  }

  names(): string[] {
    return this.tensors.map((t) => t.name);
  }

  has(name: string): boolean {
    return this.byName.has(name);
  }

  info(name: string): TensorEntry {
    const e = this.byName.get(name);
    if (!e) throw new SafetensorsError(`safetensors: ${this.path}: no tensor '${name}' (the file has ${this.tensors.length})`, this.path, name);
    return e;
  }

  /**
   * The tensor `name`: a zero-copy view of the mapping when its offset is
   * aligned to its element size, else (or with `copy`) a copy in native
   * memory. The caller owns it and disposes it.
   */
  get(name: string, opts: GetOptions = {}): Tensor {
    const e = this.info(name);
    if (this.file.isClosed) throw new SafetensorsError(`safetensors: ${this.path}: get('${name}') after close()`, this.path, name);
    const dtype = e.dtype;
    if (!dtype) {
      throw new SafetensorsError(`safetensors: ${this.path}: tensor '${name}' has dtype ${e.fileDtype}, which seedvl tensors cannot hold`, this.path, name);
    }
    let t: Tensor;
    if (e.byteLength === 0) {
      t = fromBuffer(new ArrayBuffer(0), 0, e.shape, dtype);
    } else if (opts.copy || e.fileOffset % bytesOf(dtype) !== 0) {
      t = this.copyOut(e, dtype);
    } else {
      const s = this.file.slice(e.fileOffset, e.byteLength);
      try {
        t = fromBuffer(s.buffer, 0, e.shape, dtype, s);
      } catch (err) {
        s.release();
        throw err;
      }
    }
    t.name = name;
    return t;
  }

  /** Drops the handle; live tensors keep the mapping until they are disposed. Idempotent. */
  close(): void {
    this.file.close();
  }

  private copyOut(e: TensorEntry, dtype: DType): Tensor {
    const t = empty(e.shape, dtype);
    const CHUNK = 256 << 20; // typed arrays stay under Node 20's 4 GiB limit
    for (let done = 0; done < e.byteLength; done += CHUNK) {
      const len = Math.min(CHUNK, e.byteLength - done);
      new Uint8Array(t.storage.buffer, t.byteOffset + done, len).set(this.file.bytes(e.fileOffset + done, len));
    }
    return t;
  }
}

export function openSafetensors(path: string, opts: MapOptions = {}): SafetensorsFile {
  return SafetensorsFile.open(path, opts);
}

export type TensorMap = Record<string, Tensor> | Map<string, Tensor>;

function entriesOf(tensors: TensorMap): [string, Tensor][] {
  return tensors instanceof Map ? [...tensors.entries()] : Object.entries(tensors);
}

/**
 * Writes `tensors` (+ optional string metadata) to `path` atomically: a temp
 * file in the same directory, fsync, rename. Non-contiguous tensors are
 * written through a contiguous copy. uint8 is written as U8 (a tensor read
 * from a BOOL entry comes back as U8).
 */
export function saveSafetensors(path: string, tensors: TensorMap, metadata?: Record<string, string>): void {
  const entries = entriesOf(tensors);
  const fail = (msg: string, name?: string): never => {
    throw new SafetensorsError(`saveSafetensors: ${path}: ${msg}`, path, name);
  };
  if (metadata !== undefined) {
    if (typeof metadata !== 'object' || metadata === null) fail('metadata must be an object of strings');
    for (const [k, v] of Object.entries(metadata)) if (typeof v !== 'string') fail(`metadata['${k}'] must be a string, got ${typeof v}`);
  }
  const seen = new Set<string>();
  const list: HeaderTensor[] = [];
  for (const [name, t] of entries) {
    if (typeof name !== 'string' || name.length === 0) fail('tensor names must be non-empty strings');
    if (name === '__metadata__') fail(`'__metadata__' is reserved and cannot name a tensor`, name);
    if (seen.has(name)) fail(`duplicate tensor name '${name}'`, name);
    seen.add(name);
    if (!(t instanceof Tensor)) fail(`'${name}' is not a Tensor`, name);
    if (t.isDisposed) fail(`tensor '${name}' [${t.shape}] is disposed`, name);
    if (!isDType(t.dtype)) fail(`tensor '${name}' has unknown dtype '${t.dtype}'`, name);
    list.push({ name, fileDtype: FILE_DTYPE_OF[t.dtype], shape: t.shape, byteLength: t.size * bytesOf(t.dtype) });
  }
  const byName = new Map(entries);
  const { header, order, dataBytes } = buildSafetensorsHeader(list, metadata);
  writeFileAtomic(path, (sink) => {
    sink.writeBytes(header);
    for (const { name, begin, end } of order) {
      const t = byName.get(name)!;
      if (end === begin) continue;
      const src = t.isContiguous ? t : contiguousCopy(t);
      try {
        sink.write(src.storage.buffer, src.byteOffset, end - begin);
      } finally {
        if (src !== t) src.dispose();
      }
    }
    if (sink.position !== header.length + dataBytes) fail(`wrote ${sink.position} bytes, expected ${header.length + dataBytes}`);
  });
}
