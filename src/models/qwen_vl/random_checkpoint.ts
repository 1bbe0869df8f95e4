/**
 * Writes a random-initialised Qwen-VL checkpoint in the Hub layout (config.json
 * + bf16 shards + index), for benchmarks and tests with real shapes. Matrices
 * are N(0, std) values, norms ones, biases zeros. Shards are generated and
 * written one at a time, so memory stays at about one shard; large matrices
 * are filled from a pool of random values at shifting offsets (timing does
 * not depend on the values, and this writes gigabytes in seconds).
 */
import { mkdirSync, writeFileSync, existsSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { empty, castInto, normal_, type Tensor } from '../../tensor/index.ts';
import { saveSafetensors } from '../../io/safetensors.ts';
import { parseQwenConfig } from './config.ts';
import { hubTensors, hubParamCount } from './hub_layout.ts';

export interface RandomCheckpointOptions {
  seed?: number;
  /** Standard deviation of matrices (default 0.02, Hugging Face's initializer_range). */
  std?: number;
  maxShardBytes?: number;
}

const POOL = (1 << 22) + 13; // not a power of two: rows and experts do not repeat in step

/** Writes `dir` (config.json, model-0000k-of-0000n.safetensors, index); returns the parameter count. */
export function writeRandomCheckpoint(dir: string, configJson: Record<string, unknown>, opts: RandomCheckpointOptions = {}): { params: number; bytes: number } {
  const cfg = parseQwenConfig(configJson, join(dir, 'config.json'));
  const list = hubTensors(cfg);
  const maxShard = opts.maxShardBytes ?? 2 ** 31;
  const poolF32 = normal_(empty([POOL], 'float32'), 0, opts.std ?? 0.02, opts.seed ?? 1234);
  const pool = empty([POOL], 'bfloat16');
  castInto(poolF32, pool);
  poolF32.dispose();
  const poolBits = pool.data<Uint16Array>();
  let cursor = 0;
  const fill = (t: Tensor): void => {
    const dst = t.data<Uint16Array>();
    for (let at = 0; at < dst.length;) {
      const n = Math.min(dst.length - at, POOL - cursor);
      dst.set(poolBits.subarray(cursor, cursor + n), at);
      at += n;
      cursor = (cursor + n + 7919) % POOL;
    }
  };
  // Group tensors into shards by size, in order.
  const shards: (typeof list)[] = [[]];
  let size = 0;
  for (const t of list) {
    const bytes = 2 * t.shape.reduce((a, b) => a * b, 1);
    if (size + bytes > maxShard && shards[shards.length - 1].length) {
      shards.push([]);
      size = 0;
    }
    shards[shards.length - 1].push(t);
    size += bytes;
  }
  const tmp = `${dir}.tmp-${process.pid}`;
  if (existsSync(tmp)) rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  const weightMap: Record<string, string> = {};
  let total = 0;
  const N = shards.length;
  shards.forEach((group, k) => {
    const file = `model-${String(k + 1).padStart(5, '0')}-of-${String(N).padStart(5, '0')}.safetensors`;
    const tensors: Record<string, Tensor> = {};
    try {
      for (const t of group) {
        const x = empty(t.shape, 'bfloat16');
        if (t.role === 'matrix') fill(x);
        else x.data<Uint16Array>().fill(t.role === 'norm' ? 0x3f80 : 0); // bf16 1.0 / 0.0
        tensors[t.name] = x;
        weightMap[t.name] = file;
        total += 2 * x.size;
      }
      saveSafetensors(join(tmp, file), tensors, { format: 'pt' });
    } finally {
      for (const x of Object.values(tensors)) x.dispose();
    }
  });
  pool.dispose();
  writeFileSync(join(tmp, 'model.safetensors.index.json'), JSON.stringify({ metadata: { total_size: total }, weight_map: weightMap }, null, 1));
  writeFileSync(join(tmp, 'config.json'), JSON.stringify(configJson, null, 1));
  if (existsSync(dir)) rmSync(dir, { recursive: true, force: true });
  renameSync(tmp, dir);
  return { params: hubParamCount(list), bytes: total };
}
