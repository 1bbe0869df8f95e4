/**
 * Machine limits, measured once per benchmark run with the native probes
 * (native/src/probe.cc): f32 FMA peak on 1 and on all pool threads, and DRAM
 * read bandwidth over a 512 MiB array on 1 and all threads. Each probe runs a
 * few times and keeps its best value (interference only ever lowers them).
 */
import { readFileSync } from 'node:fs';
import { native, numThreads } from '../src/tensor/index.ts';
import { makeResult, type BenchResult, type Limits } from './harness.ts';

interface ProbeKernels {
  probeFmaPeak(threads: number, bits: number, iters: number): number;
  probeReadBandwidth(threads: number, mib: number, reps: number): number;
}

function llcBytes(): number {
  try {
    const s = readFileSync('/sys/devices/system/cpu/cpu0/cache/index3/size', 'utf8').trim();
    const m = /^(\d+)([KMG]?)/.exec(s);
    if (m) return Number(m[1]) * ({ '': 1, K: 1024, M: 1 << 20, G: 1 << 30 } as Record<string, number>)[m[2]];
  } catch {
    /* no sysfs: fall through */
  }
  return 32 << 20;
}

function best(n: number, f: () => number): number {
  let b = 0;
  for (let i = 0; i < n; i++) b = Math.max(b, f());
  return b;
}

export function measureLimits(): { limits: Limits; lines: BenchResult[] } {
  const k = native as unknown as ProbeKernels;
  const threads = numThreads();
  const bits = native.cpu.avx512f ? 512 : 256;
  const iters = 4_000_000; // ~30 ms per call at peak
  const fmaPeak1 = best(5, () => k.probeFmaPeak(1, bits, iters));
  const fmaPeakAll = best(5, () => k.probeFmaPeak(threads, bits, iters));
  const dramRead1 = k.probeReadBandwidth(1, 512, 4);
  const dramReadAll = k.probeReadBandwidth(threads, 512, 4);
  const limits: Limits = { threads, fmaPeak1, fmaPeakAll, dramRead1, dramReadAll, llcBytes: llcBytes() };
  const lines = [
    makeResult('limits', `fma_peak_f32_zmm${bits === 512 ? '' : '_ymm'}_1t`, fmaPeak1, 'GFLOP/s'),
    makeResult('limits', `fma_peak_f32_zmm${bits === 512 ? '' : '_ymm'}_${threads}t`, fmaPeakAll, 'GFLOP/s', fmaPeak1, 'fma_peak_1t'),
    makeResult('limits', 'dram_read_512MiB_1t', dramRead1, 'GB/s'),
    makeResult('limits', `dram_read_512MiB_${threads}t`, dramReadAll, 'GB/s', dramRead1, 'dram_read_1t'),
    makeResult('limits', 'llc_size', limits.llcBytes / (1 << 20), 'MiB'),
  ];
  return { limits, lines };
}
