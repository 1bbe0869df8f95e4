/**
 * Writing a Hub-style checkpoint directory: config.json, the tensors in
 * `model.safetensors` (one shard) or `model-0000N-of-0000M.safetensors`
 * shards of at most `maxShardBytes` plus `model.safetensors.index.json`.
 *
 * Atomic as a directory: everything is written and fsynced in a sibling
 * `<dir>.tmp-<pid>-<hex>`, then renamed to `<dir>`. Replacing an existing
 * directory (`overwrite: true`) swaps the two in one step with
 * renameat2(RENAME_EXCHANGE) and deletes the old one; where the filesystem
 * cannot swap, the old directory is first renamed to `<dir>.old-…` (for that
 * instant `<dir>` does not exist, but both complete versions are on disk).
 * A reader never sees a half-written checkpoint under `<dir>`.
 */
import { existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { dirname, join, resolve } from 'node:path';
import { bytesOf } from '../tensor/dtype.ts';
import { kernels } from '../tensor/native.ts';
import type { Tensor } from '../tensor/tensor.ts';
import { saveSafetensors, type TensorMap } from './safetensors.ts';
import { fsyncDir, writeFileAtomic } from './atomic_write.ts';

export interface WriteCheckpointOptions {
  /** Written as config.json (JSON.stringify, 2-space indent) when given. */
  config?: unknown;
  /** Other files to write alongside (e.g. generation_config.json): name → text or bytes. */
  files?: Record<string, string | Uint8Array>;
  /** Largest shard in bytes (default 5e9, as transformers). A tensor larger than this gets a shard of its own. */
  maxShardBytes?: number;
  /** Each shard's __metadata__; {format: 'pt'} is always included (transformers refuses files without it). */
  metadata?: Record<string, string>;
  /** Replace an existing directory (default: refuse). */
  overwrite?: boolean;
}

export interface WrittenCheckpoint {
  dir: string;
  /** Every file written, in write order (the index last). */
  files: string[];
  sharded: boolean;
  totalBytes: number;
}

const DEFAULT_MAX_SHARD = 5e9;

export function shardName(i: number, n: number): string {
  return `model-${String(i).padStart(5, '0')}-of-${String(n).padStart(5, '0')}.safetensors`;
}

/** Splits names into shards in the given order, each at most `max` bytes (an oversized tensor alone). */
function planShards(entries: [string, Tensor][], max: number): [string, Tensor][][] {
  const shards: [string, Tensor][][] = [];
  let cur: [string, Tensor][] = [];
  let bytes = 0;
  for (const e of entries) {
    const b = e[1].size * bytesOf(e[1].dtype);
    if (cur.length > 0 && bytes + b > max) {
      shards.push(cur);
      cur = [];
      bytes = 0;
    }
    cur.push(e);
    bytes += b;
  }
  if (cur.length > 0 || shards.length === 0) shards.push(cur);
  return shards;
}

interface RenameKernels {
  renameExchange(a: string, b: string): boolean;
}

export function writeCheckpoint(dir: string, tensors: TensorMap, opts: WriteCheckpointOptions = {}): WrittenCheckpoint {
  const target = resolve(dir);
  const max = opts.maxShardBytes ?? DEFAULT_MAX_SHARD;
  if (!(max > 0)) throw new RangeError(`writeCheckpoint: ${target}: maxShardBytes must be > 0, got ${max}`);
  if (existsSync(target) && !opts.overwrite) throw new Error(`writeCheckpoint: ${target} already exists (pass overwrite: true to replace it)`);
  for (const name of Object.keys(opts.files ?? {})) {
    if (name.includes('/') || name.includes('\\') || name === '.' || name === '..' || /\.safetensors$|\.index\.json$/.test(name) || name === 'config.json') {
      throw new Error(`writeCheckpoint: ${target}: extra file name '${name}' is not allowed (plain names only; shards, index and config.json are written by writeCheckpoint)`);
    }
  }
  const entries = tensors instanceof Map ? [...tensors.entries()] : Object.entries(tensors);
  const metadata = { ...opts.metadata, format: 'pt' };
  const plan = planShards(entries, max);
  const sharded = plan.length > 1;

  mkdirSync(dirname(target), { recursive: true });
  const tmp = `${target}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  mkdirSync(tmp);
  const files: string[] = [];
  let totalBytes = 0;
  try {
    if (opts.config !== undefined) {
      const text = JSON.stringify(opts.config, null, 2);
      if (text === undefined) throw new TypeError(`writeCheckpoint: ${target}: config is not JSON-serialisable`);
      writeText(join(tmp, 'config.json'), text + '\n');
      files.push('config.json');
    }
    for (const [name, body] of Object.entries(opts.files ?? {})) {
      writeText(join(tmp, name), body);
      files.push(name);
    }
    const weightMap: Record<string, string> = Object.create(null);
    plan.forEach((shard, i) => {
      const file = sharded ? shardName(i + 1, plan.length) : 'model.safetensors';
      saveSafetensors(join(tmp, file), new Map(shard), metadata);
      files.push(file);
      for (const [name, t] of shard) {
        weightMap[name] = file;
        totalBytes += t.size * bytesOf(t.dtype);
      }
    });
    if (sharded) {
      const sortedMap: Record<string, string> = Object.create(null);
      for (const k of Object.keys(weightMap).sort()) sortedMap[k] = weightMap[k];
      writeText(join(tmp, 'model.safetensors.index.json'), JSON.stringify({ metadata: { total_size: totalBytes }, weight_map: sortedMap }, null, 2) + '\n');
      files.push('model.safetensors.index.json');
    }
    fsyncDir(tmp);
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
  try {
    moveIntoPlace(tmp, target);
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
  return { dir: target, files, sharded, totalBytes };
}

function writeText(path: string, body: string | Uint8Array): void {
  const bytes = typeof body === 'string' ? new TextEncoder().encode(body) : body;
  writeFileAtomic(path, (sink) => sink.writeBytes(bytes));
}

/**
 * Renames the finished directory `tmp` to `target`, replacing an existing
 * `target` as atomically as the filesystem allows (`exchange: false` forces
 * the two-rename fallback; for tests).
 */
export function moveIntoPlace(tmp: string, target: string, opts: { exchange?: boolean } = {}): void {
  if (!existsSync(target)) {
    renameSync(tmp, target);
  } else if (opts.exchange !== false && kernels<RenameKernels>(['renameExchange']).renameExchange(tmp, target)) {
    rmSync(tmp, { recursive: true, force: true }); // tmp now holds the old checkpoint
  } else {
    const old = `${target}.old-${process.pid}-${randomBytes(4).toString('hex')}`;
    renameSync(target, old);
    try {
      renameSync(tmp, target);
    } catch (e) {
      renameSync(old, target); // put the previous checkpoint back
      throw e;
    }
    rmSync(old, { recursive: true, force: true });
  }
  fsyncDir(dirname(target));
}
