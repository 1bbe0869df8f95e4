/**
 * The opt-in bf16-compute GEMM (setMatmulPrecision('bf16')) against the default
 * f32 path, on the same linear (x f32, W bf16 [N, K]) in the same run:
 *  - prefill 256×4096×4096 and vision-encoder-like 1024×1280×5120 (M×K×N);
 *  - GFLOP/s of both paths on 1 and all threads, each as a ratio to the
 *    measured f32 FMA peak (the bf16 path's ideal is ~2× that peak), and the
 *    bf16/f32 speedup;
 *  - the bf16 path runs on AMX tiles where the CPU and OS allow them: then
 *    both bf16 kernels are timed ('bf16' = AMX, 'bf16_avx512' = vdpbf16ps);
 *  - the measured vdpbf16ps peak (probeDpbf16Peak), the bf16 path's real ceiling,
 *    and the bf16 path's ratio to it: on some CPUs vdpbf16ps delivers half the
 *    f32 FMA FLOP rate (the bf16 path then loses), on others twice.
 *
 * `gemm_bf16_vs_torch_MxKxN`: our bf16 path (AMX where available) against
 * PyTorch's CPU bf16 F.linear (oneDNN; bf16 in and out) on the Qwen2.5-VL-3B
 * prefill and vision shapes and small-M (MoE expert) shapes, on all threads:
 * GFLOP/s of both and ours/torch. Torch runs in a subprocess
 * (bench/peers/torch_gemm.py, from .bench-venv or SEEDVL_BENCH_VENV) between
 * timings of ours, twice per shape (best of each), so a burst of load on the
 * shared machine hits both alike. Without the venv only ours is reported.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as T from '../src/tensor/index.ts';
import { linear, setMatmulPrecision } from '../src/tensor/ops/matmul.ts';
import type { Bench, BenchContext, BenchResult } from './harness.ts';

const threadCounts = (ctx: BenchContext): number[] => [...new Set([1, ctx.limits.threads])];
const peakFor = (ctx: BenchContext, t: number): number => (t === 1 ? ctx.limits.fmaPeak1 : ctx.limits.fmaPeakAll);

interface ProbeKernels {
  probeDpbf16Peak(threads: number, iters: number): number;
  setBf16GemmKernel(kernel: 'amx' | 'avx512bf16'): string;
}
const probe = (): ProbeKernels => T.native as unknown as ProbeKernels;
const dpPeaks = new Map<number, number>();
/** Best of 3 vdpbf16ps peak measurements on t threads (cached for the run). */
function dpPeak(t: number): number | null {
  if (!T.native.cpu.avx512bf16) return null;
  if (!dpPeaks.has(t)) {
    let best = 0;
    for (let i = 0; i < 3; i++) best = Math.max(best, probe().probeDpbf16Peak(t, 2_000_000));
    dpPeaks.set(t, best);
  }
  return dpPeaks.get(t)!;
}

function withSettings<R>(threads: number, precision: 'f32' | 'bf16', f: () => R): R {
  const prevT = T.numThreads();
  T.setNumThreads(threads);
  const prevP = setMatmulPrecision(precision);
  try {
    return f();
  } finally {
    setMatmulPrecision(prevP);
    T.setNumThreads(prevT);
  }
}

function bf16Bench(M: number, K: number, N: number): Bench {
  const name = `gemm_bf16w_${M}x${K}x${N}`;
  return {
    name,
    async run(ctx) {
      if (!T.native.cpu.avx512bf16) ctx.note(`${name}: no avx512_bf16 on this CPU, the bf16 setting falls back to f32`);
      const x = T.randn([M, K]), wf = T.randn([N, K]), w = T.cast(wf, 'bfloat16');
      wf.dispose();
      const res: BenchResult[] = [];
      const flops = 2 * M * N * K;
      const hasAmx = T.native.cpu.avx512bf16 && probe().setBf16GemmKernel('amx') === 'amx';
      const timeBf16 = (t: number, kernel: 'amx' | 'avx512bf16'): number => {
        probe().setBf16GemmKernel(kernel);
        try {
          return withSettings(t, 'bf16', () => ctx.time(() => linear(x, w).dispose(), { reps: 5, minMs: 300 })).median;
        } finally {
          if (T.native.cpu.avx512bf16) probe().setBf16GemmKernel('amx');
        }
      };
      try {
        for (const t of threadCounts(ctx)) {
          const gf: Record<string, number> = {};
          gf.f32 = flops / withSettings(t, 'f32', () => ctx.time(() => linear(x, w).dispose(), { reps: 5, minMs: 300 })).median / 1e9;
          res.push(ctx.result(name, `f32_gflops_${t}t`, gf.f32, 'GFLOP/s', peakFor(ctx, t), `fma_peak_${t}t`));
          if (T.native.cpu.avx512bf16) {
            gf.bf16_avx512 = flops / timeBf16(t, 'avx512bf16') / 1e9;
            res.push(ctx.result(name, `bf16_avx512_gflops_${t}t`, gf.bf16_avx512, 'GFLOP/s', peakFor(ctx, t), `fma_peak_${t}t`));
          }
          gf.bf16 = hasAmx ? flops / timeBf16(t, 'amx') / 1e9 : (gf.bf16_avx512 ?? gf.f32);
          if (hasAmx) res.push(ctx.result(name, `bf16_amx_gflops_${t}t`, gf.bf16, 'GFLOP/s', peakFor(ctx, t), `fma_peak_${t}t`));
          res.push(ctx.result(name, `bf16_vs_f32_${t}t`, gf.bf16 / gf.f32, 'x'));
          const dp = dpPeak(t);
          if (dp != null) {
            res.push(ctx.result(name, `dpbf16_peak_${t}t`, dp, 'GFLOP/s', peakFor(ctx, t), `fma_peak_${t}t`));
            res.push(ctx.result(name, `bf16_avx512_gflops_${t}t_of_dpbf16_peak`, gf.bf16_avx512, 'GFLOP/s', dp, `dpbf16_peak_${t}t`));
          }
        }
      } finally {
        x.dispose();
        w.dispose();
      }
      return res;
    },
  };
}

const here = dirname(fileURLToPath(import.meta.url));
const venvPython = join(process.env.SEEDVL_BENCH_VENV ?? join(here, '..', '.bench-venv'), 'bin', 'python');

/** Best-of GFLOP/s of torch's bf16 F.linear for one shape, or an error text. */
function torchLinear(M: number, K: number, N: number, threads: number): number | string {
  const r = spawnSync(venvPython, [join(here, 'peers', 'torch_gemm.py'), '--threads', String(threads), '--shapes', `${M},${K},${N}`], {
    encoding: 'utf8', timeout: 300_000,
  });
  try {
    return JSON.parse((r.stdout ?? '').trim().split('\n').pop() ?? '').gflops as number;
  } catch {
    return `exit ${r.status}: ${(r.stderr ?? '').trim().split('\n').slice(-2).join(' | ')}`;
  }
}

/** Qwen2.5-VL-3B: LLM prefill (512 tokens) q/o, k/v, mlp up/down; 256-token and vision blocks; MoE-sized M. */
const vsTorchShapes: [number, number, number][] = [
  [512, 2048, 2048], [512, 2048, 256], [512, 2048, 11008], [512, 11008, 2048], [256, 4096, 4096],
  [1024, 1280, 5120], [5476, 1280, 3420], [5476, 3420, 1280], [5476, 1280, 3840],
  [8, 2048, 768], [16, 2048, 768], [32, 768, 2048], [64, 2048, 768],
];

function vsTorchBench(M: number, K: number, N: number): Bench {
  const name = `gemm_bf16_vs_torch_${M}x${K}x${N}`;
  return {
    name,
    async run(ctx) {
      if (!T.native.cpu.avx512bf16) {
        ctx.note(`${name}: no avx512_bf16 on this CPU, skipped`);
        return [];
      }
      const t = ctx.limits.threads, flops = 2 * M * N * K;
      const x = T.randn([M, K]), wf = T.randn([N, K]), w = T.cast(wf, 'bfloat16');
      wf.dispose();
      try {
        const kernel = probe().setBf16GemmKernel('amx');
        const ours = (): number => withSettings(t, 'bf16', () => ctx.time(() => linear(x, w).dispose(), { reps: 5, minMs: 400 })).min;
        // ours, torch, ours, torch, ours: best of each, so a burst of load on the shared machine hits both alike.
        let best = ours();
        let torch: number | string = existsSync(venvPython) ? 0 : `no ${venvPython} (bench/peers/make_venv.sh)`;
        for (let round = 0; round < 2; round++) {
          if (typeof torch === 'number') {
            const r = torchLinear(M, K, N, t);
            torch = typeof r === 'number' ? Math.max(torch, r) : r;
          }
          best = Math.min(best, ours());
        }
        const gf = flops / best / 1e9;
        const res = [ctx.result(name, `ours_${kernel}_gflops_${t}t`, gf, 'GFLOP/s', ctx.limits.fmaPeakAll, `fma_peak_${t}t`)];
        if (typeof torch === 'number') {
          res.push(ctx.result(name, `torch_bf16_gflops_${t}t`, torch, 'GFLOP/s', ctx.limits.fmaPeakAll, `fma_peak_${t}t`));
          res.push(ctx.result(name, `ours_vs_torch_${t}t`, gf / torch, 'x'));
        } else {
          ctx.note(`${name}: PyTorch peer unavailable (${torch})`);
        }
        return res;
      } finally {
        x.dispose();
        w.dispose();
      }
    },
  };
}

export const benches: Bench[] = [
  bf16Bench(256, 4096, 4096), bf16Bench(1024, 1280, 5120), ...vsTorchShapes.map(([M, K, N]) => vsTorchBench(M, K, N)),
];
