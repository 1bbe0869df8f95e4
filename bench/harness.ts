/**
 * The benchmark contract. A file `bench/<group>.bench.ts` exports
 * `benches: Bench[]`; `npm run bench` (bench/run.ts) runs them with a
 * BenchContext that holds the machine limits measured in the same run
 * (bench/limits.ts) and timing helpers. Every number a bench reports is a
 * BenchResult line, ideally with a ratio to a limit or to a peer measured in
 * the same run, because absolute timings on a shared 2-core VM drift.
 */

/** One output line (`--json` prints exactly these keys). */
export interface BenchResult {
  bench: string;
  metric: string;
  value: number;
  unit: string;
  ratio: number | null;
  ratio_to: string | null;
}

/** Machine limits measured once per run (see limits.ts). */
export interface Limits {
  /** Threads of the native pool when the run started ("all threads"). */
  threads: number;
  /** f32 FMA peak with 512-bit vectors (or 256-bit without AVX-512), GFLOP/s. */
  fmaPeak1: number;
  fmaPeakAll: number;
  /** DRAM read bandwidth over a 512 MiB array, GB/s. */
  dramRead1: number;
  dramReadAll: number;
  /** Last-level cache size in bytes (sysfs; 32 MiB if unknown), for sizing "from DRAM" working sets. */
  llcBytes: number;
}

export interface Timing {
  /** Seconds per call: median, min and max over the timed repetitions. */
  median: number;
  min: number;
  max: number;
  reps: number;
}

export interface TimeOptions {
  /** Untimed calls first (JIT, page faults, caches). Default 2. */
  warmup?: number;
  /** Timed calls at least. Default 7. */
  reps?: number;
  /** Keep repeating until this much time was measured. Default 200 ms. */
  minMs?: number;
  /** Give up adding repetitions after this long. Default 5000 ms. */
  maxMs?: number;
}

export interface BenchContext {
  limits: Limits;
  /** Times a synchronous function (median of repetitions after warm-up). */
  time(fn: () => void, opts?: TimeOptions): Timing;
  /** Same for an async function (awaited each call). */
  timeAsync(fn: () => Promise<unknown>, opts?: TimeOptions): Promise<Timing>;
  /** A result line; `ratio` is value / `of` when `of` is given. */
  result(bench: string, metric: string, value: number, unit: string, of?: number | null, ratioTo?: string | null): BenchResult;
  /** A note for the reader (stderr in --json mode). */
  note(message: string): void;
}

export interface Bench {
  name: string;
  run(ctx: BenchContext): Promise<BenchResult[]>;
}

const nowSec = (): number => Number(process.hrtime.bigint()) / 1e9;

function summarize(samples: number[]): Timing {
  const s = [...samples].sort((a, b) => a - b);
  return { median: s[s.length >> 1], min: s[0], max: s[s.length - 1], reps: s.length };
}

export function timeSync(fn: () => void, opts: TimeOptions = {}): Timing {
  const { warmup = 2, reps = 7, minMs = 200, maxMs = 5000 } = opts;
  for (let i = 0; i < warmup; i++) fn();
  const samples: number[] = [];
  const start = nowSec();
  while (samples.length < reps || ((nowSec() - start) * 1e3 < minMs && (nowSec() - start) * 1e3 < maxMs)) {
    const t0 = nowSec();
    fn();
    samples.push(nowSec() - t0);
    if ((nowSec() - start) * 1e3 > maxMs && samples.length >= 3) break;
  }
  return summarize(samples);
}

export async function timeAsync(fn: () => Promise<unknown>, opts: TimeOptions = {}): Promise<Timing> {
  const { warmup = 2, reps = 7, minMs = 200, maxMs = 5000 } = opts;
  for (let i = 0; i < warmup; i++) await fn();
  const samples: number[] = [];
  const start = nowSec();
  while (samples.length < reps || ((nowSec() - start) * 1e3 < minMs && (nowSec() - start) * 1e3 < maxMs)) {
    const t0 = nowSec();
    await fn();
    samples.push(nowSec() - t0);
    if ((nowSec() - start) * 1e3 > maxMs && samples.length >= 3) break;
  }
  return summarize(samples);
}

export function makeResult(
  bench: string, metric: string, value: number, unit: string, of: number | null = null, ratioTo: string | null = null,
): BenchResult {
  const ratio = of != null && of > 0 && Number.isFinite(value) ? value / of : null;
  return { bench, metric, value, unit, ratio: ratio == null ? null : Number(ratio.toFixed(4)), ratio_to: ratio == null ? null : ratioTo };
}
