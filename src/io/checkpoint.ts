/**
 * Hub-style checkpoint directories: `model.safetensors`, or shards
 * `model-0000N-of-0000M.safetensors` listed by `model.safetensors.index.json`,
 * next to `config.json`. The reader checks the index against the shards
 * before handing out anything; the writer is in checkpoint_write.ts.
 *
 * Tensors found in a shard but not in the index are an error by default (the
 * index and the shards disagree, e.g. a stale shard); `unindexed: 'warn'`
 * loads them anyway, from the shard that holds them, and records a warning.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { Tensor } from '../tensor/tensor.ts';
import type { DType } from '../tensor/dtype.ts';
import type { MapOptions } from './mapped_file.ts';
import { SafetensorsFile, type GetOptions } from './safetensors.ts';

export { writeCheckpoint, type WriteCheckpointOptions, type WrittenCheckpoint } from './checkpoint_write.ts';

export const SINGLE_FILE = 'model.safetensors';
export const INDEX_FILE = 'model.safetensors.index.json';
export const CONFIG_FILE = 'config.json';
const SHARD_RE = /^(.+)-(\d+)-of-(\d+)\.safetensors$/;

export class CheckpointError extends Error {
  constructor(
    message: string,
    readonly path: string,
    readonly tensor?: string,
  ) {
    super(message);
    this.name = 'CheckpointError';
  }
}

export interface CheckpointTensorInfo {
  name: string;
  /** Our dtype, or null when seedvl cannot hold the file's dtype. */
  dtype: DType | null;
  fileDtype: string;
  shape: number[];
  /** The shard's file name (within the directory). */
  file: string;
}

export interface OpenCheckpointOptions extends MapOptions {
  /** What a tensor in a shard but not in the index does: 'error' (default) or 'warn' (load it, record a warning). */
  unindexed?: 'error' | 'warn';
  /** Called with each warning (default: process.emitWarning, code SEEDVL_CHECKPOINT). Warnings are also kept in `reader.warnings`. */
  onWarning?: (message: string) => void;
}

export class CheckpointReader {
  readonly dir: string;
  /** True when read through an index. */
  readonly sharded: boolean;
  /** Problems that did not stop loading (unindexed tensors, total_size mismatch). */
  readonly warnings: string[] = [];
  /** Parsed config.json, or null when the directory has none. */
  readonly config: Record<string, unknown> | null;
  /** The index's "metadata" (e.g. total_size), or null for a single file. */
  readonly indexMetadata: Record<string, unknown> | null = null;
  private readonly shards = new Map<string, SafetensorsFile>();
  private readonly where = new Map<string, string>();

  /** `path` is a checkpoint directory, or a single .safetensors file. */
  constructor(path: string, opts: OpenCheckpointOptions = {}) {
    const isDir = existsSync(path) && statSync(path).isDirectory();
    this.dir = isDir ? path : dirname(path);
    this.config = isDir ? readJsonIfPresent(join(this.dir, CONFIG_FILE)) : null;
    try {
      if (!isDir) {
        this.sharded = false;
        this.openShard(basename(path), opts);
      } else if (existsSync(join(path, SINGLE_FILE))) {
        // transformers' order: a single model.safetensors wins over an index.
        this.sharded = false;
        this.openShard(SINGLE_FILE, opts);
      } else if (existsSync(join(path, INDEX_FILE))) {
        this.sharded = true;
        this.indexMetadata = this.openIndexed(opts);
      } else {
        throw new CheckpointError(`checkpoint: ${path}: neither ${SINGLE_FILE} nor ${INDEX_FILE} found`, path);
      }
      if (!this.sharded) for (const name of this.shards.get(this.files[0])!.names()) this.where.set(name, this.files[0]);
    } catch (e) {
      this.close();
      throw e;
    }
  }

  /** Shard file names, in the order they were opened. */
  get files(): string[] {
    return [...this.shards.keys()];
  }

  names(): string[] {
    return [...this.where.keys()];
  }

  has(name: string): boolean {
    return this.where.has(name);
  }

  info(name: string): CheckpointTensorInfo {
    const file = this.where.get(name);
    if (!file) throw new CheckpointError(`checkpoint: ${this.dir}: no tensor '${name}'`, this.dir, name);
    const e = this.shards.get(file)!.info(name);
    return { name, dtype: e.dtype, fileDtype: e.fileDtype, shape: e.shape, file };
  }

  get tensors(): CheckpointTensorInfo[] {
    return this.names().map((n) => this.info(n));
  }

  /** The tensor `name` (zero-copy over its shard's mapping; see SafetensorsFile.get). The caller disposes it. */
  get(name: string, opts: GetOptions = {}): Tensor {
    const file = this.where.get(name);
    if (!file) throw new CheckpointError(`checkpoint: ${this.dir}: no tensor '${name}'`, this.dir, name);
    return this.shards.get(file)!.get(name, opts);
  }

  /** Closes every shard; tensors already taken stay valid until disposed. Idempotent. */
  close(): void {
    for (const s of this.shards.values()) s.close();
  }

  private openShard(file: string, opts: MapOptions): SafetensorsFile {
    let s = this.shards.get(file);
    if (!s) {
      s = SafetensorsFile.open(join(this.dir, file), opts);
      this.shards.set(file, s);
    }
    return s;
  }

  private openIndexed(opts: OpenCheckpointOptions): Record<string, unknown> | null {
    const indexPath = join(this.dir, INDEX_FILE);
    const index = readJsonIfPresent(indexPath)!;
    const fail = (msg: string, tensor?: string): never => {
      throw new CheckpointError(`checkpoint: ${indexPath}: ${msg}`, indexPath, tensor);
    };
    const map = index.weight_map;
    if (typeof map !== 'object' || map === null || Array.isArray(map)) fail('"weight_map" must be an object of tensor name → shard file');
    const byFile = new Map<string, string[]>();
    for (const [key, file] of Object.entries(map as Record<string, unknown>)) {
      if (typeof file !== 'string' || file.length === 0) fail(`weight_map['${key}'] must be a file name, got ${JSON.stringify(file)}`, key);
      const f = file as string;
      if (f.includes('/') || f.includes('\\') || f === '.' || f === '..') fail(`weight_map['${key}'] = '${f}' must be a plain file name in the checkpoint directory`, key);
      if (!byFile.has(f)) byFile.set(f, []);
      byFile.get(f)!.push(key);
    }
    // Every file the index names must exist; so must every member of an N-of-M series it uses.
    const expected = new Set(byFile.keys());
    for (const f of byFile.keys()) {
      const m = SHARD_RE.exec(f);
      if (!m) continue;
      const total = Number(m[3]);
      for (let i = 1; i <= total; i++) expected.add(`${m[1]}-${String(i).padStart(m[2].length, '0')}-of-${m[3]}.safetensors`);
    }
    for (const f of [...expected].sort()) {
      if (!existsSync(join(this.dir, f))) {
        const keys = byFile.get(f);
        fail(keys ? `shard '${f}' is missing (it holds ${keys.length} indexed tensors, e.g. '${keys[0]}')` : `shard '${f}' of the series is missing`, keys?.[0]);
      }
    }
    for (const f of [...expected].sort()) {
      const shard = this.openShard(f, opts);
      for (const key of byFile.get(f) ?? []) {
        if (!shard.has(key)) fail(`tensor '${key}' is indexed in '${f}', but that shard has no such tensor`, key);
        this.where.set(key, f);
      }
    }
    let bytes = 0;
    for (const [f, shard] of this.shards) {
      for (const t of shard.tensors) {
        if (this.where.get(t.name) === f) {
          bytes += t.byteLength;
          continue;
        }
        const indexed = this.where.get(t.name);
        const what = indexed ? `also in '${f}' (indexed in '${indexed}')` : `in shard '${f}' but not in the index`;
        if (opts.unindexed !== 'warn') fail(`tensor '${t.name}' is ${what}`, t.name);
        this.warn(opts, `checkpoint: ${indexPath}: tensor '${t.name}' is ${what}${indexed ? '; using the indexed one' : '; loading it from that shard'}`);
        if (!indexed) {
          this.where.set(t.name, f);
          bytes += t.byteLength;
        }
      }
    }
    const meta = index.metadata;
    const metadata = typeof meta === 'object' && meta !== null && !Array.isArray(meta) ? (meta as Record<string, unknown>) : null;
    const total = metadata?.total_size;
    if (typeof total === 'number' && total !== bytes) this.warn(opts, `checkpoint: ${indexPath}: metadata.total_size is ${total}, but the tensors hold ${bytes} bytes`);
    return metadata;
  }

  private warn(opts: OpenCheckpointOptions, msg: string): void {
    this.warnings.push(msg);
    if (opts.onWarning) opts.onWarning(msg);
    else process.emitWarning(msg, { code: 'SEEDVL_CHECKPOINT' });
  }
}

function readJsonIfPresent(path: string): Record<string, unknown> | null {
  if (!existsSync(path)) return null;
  let v: unknown;
  try {
    v = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new CheckpointError(`checkpoint: ${path}: not valid JSON: ${(e as Error).message}`, path);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new CheckpointError(`checkpoint: ${path}: must hold a JSON object`, path);
  return v as Record<string, unknown>;
}

export function openCheckpoint(path: string, opts: OpenCheckpointOptions = {}): CheckpointReader {
  return new CheckpointReader(path, opts);
}
