/**
 * Attention benches (native flash kernels, f32), on 1 and all pool threads:
 *  - prefill: causal self-attention, one sequence of 4096 tokens, 16 heads × 64.
 *    FLOPs counted as 4·S²·D·H/2 (the two matrix products over the causal half);
 *    ratio to the measured FMA peak of the same thread count.
 *  - backward of the same (FlashAttention-2 recomputation: five matrix products,
 *    counted as 2.5× the forward FLOPs), and its time relative to the forward.
 *  - decode: one query token per head against a 4096-token KV cache, 16 heads × 64
 *    (32 MiB of K and V). "dram" rotates over enough caches to exceed twice the
 *    last-level cache (at most 8), so each call streams K/V from memory (ratio to
 *    the measured DRAM read bandwidth); "hot" reuses one cache (partly LLC-resident).
 */
import * as T from '../src/tensor/index.ts';
import { attention, attentionDecode } from '../src/tensor/ops/attention.ts';
import type { Bench, BenchContext, BenchResult } from './harness.ts';

const S = 4096, H = 16, D = 64;

const threadCounts = (ctx: BenchContext): number[] => [...new Set([1, ctx.limits.threads])];
const peakFor = (ctx: BenchContext, t: number): number => (t === 1 ? ctx.limits.fmaPeak1 : ctx.limits.fmaPeakAll);
const bwFor = (ctx: BenchContext, t: number): number => (t === 1 ? ctx.limits.dramRead1 : ctx.limits.dramReadAll);

function withThreads<R>(n: number, f: () => R): R {
  const prev = T.numThreads();
  T.setNumThreads(n);
  try {
    return f();
  } finally {
    T.setNumThreads(prev);
  }
}

/** Deterministic values in [-1, 1) (no RNG dependency; fast to fill). */
function filled(shape: number[], seed: number): T.Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const a = new Float32Array(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s ^= s << 13; s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5; s >>>= 0;
    a[i] = s / 2147483648 - 1;
  }
  return T.tensor(a, shape);
}

const prefill: Bench = {
  name: 'attention_prefill_4096_16x64_causal',
  async run(ctx) {
    const name = 'attention_prefill_4096_16x64_causal';
    const fwdFlops = (4 * S * S * D * H) / 2;
    const q = filled([S, H, D], 1), k = filled([S, H, D], 2), v = filled([S, H, D], 3), g = filled([S, H, D], 4);
    const res: BenchResult[] = [];
    try {
      for (const t of threadCounts(ctx)) {
        const tf = withThreads(t, () => ctx.time(() => attention(q, k, v, { causal: true }).dispose(), { reps: 5, minMs: 500 }));
        res.push(ctx.result(name, `fwd_ms_${t}t`, tf.median * 1e3, 'ms'));
        res.push(ctx.result(name, `fwd_gflops_${t}t`, fwdFlops / tf.median / 1e9, 'GFLOP/s', peakFor(ctx, t), `fma_peak_${t}t`));
        // Backward alone: one recorded forward, then backward through the retained graph.
        for (const x of [q, k, v]) x.requiresGrad = true;
        const out = attention(q, k, v, { causal: true });
        const tb = withThreads(t, () =>
          ctx.time(() => T.backward(out, { grad: g, retainGraph: true }), { reps: 3, minMs: 500 }));
        out.dispose();
        for (const x of [q, k, v]) {
          x.requiresGrad = false;
          x.grad?.dispose();
          x.grad = null;
        }
        res.push(ctx.result(name, `bwd_ms_${t}t`, tb.median * 1e3, 'ms', tf.median * 1e3, 'fwd_ms'));
        res.push(ctx.result(name, `bwd_gflops_${t}t`, (2.5 * fwdFlops) / tb.median / 1e9, 'GFLOP/s', peakFor(ctx, t), `fma_peak_${t}t`));
      }
    } finally {
      for (const x of [q, k, v, g]) x.dispose();
    }
    return res;
  },
};

const decode: Bench = {
  name: 'attention_decode_cache4096_16x64',
  async run(ctx) {
    const name = 'attention_decode_cache4096_16x64';
    const cacheBytes = 2 * H * S * D * 4;
    // At least 2x the LLC, capped at 8 caches (256 MiB) in case sysfs reports an implausible LLC.
    const count = Math.min(8, Math.max(2, Math.ceil((2 * ctx.limits.llcBytes) / cacheBytes)));
    ctx.note(`${name}: dram variant rotates over ${count} caches (${((count * cacheBytes) / 2 ** 20).toFixed(0)} MiB)`);
    const ks = Array.from({ length: count }, (_, i) => filled([1, H, S, D], 10 + i));
    const vs = Array.from({ length: count }, (_, i) => filled([1, H, S, D], 50 + i));
    const q = filled([1, H, D], 5);
    const res: BenchResult[] = [];
    try {
      for (const t of threadCounts(ctx)) {
        const hot = withThreads(t, () => ctx.time(() => attentionDecode(q, ks[0], vs[0], [S]).dispose(), { reps: 20, minMs: 300 }));
        res.push(ctx.result(name, `hot_us_${t}t`, hot.median * 1e6, 'us'));
        let i = 0;
        const cold = withThreads(t, () =>
          ctx.time(() => { attentionDecode(q, ks[i % count], vs[i % count], [S]).dispose(); i++; }, { warmup: count, reps: 4 * count, minMs: 300 }));
        res.push(ctx.result(name, `dram_us_${t}t`, cold.median * 1e6, 'us'));
        res.push(ctx.result(name, `dram_kv_gbs_${t}t`, cacheBytes / cold.median / 1e9, 'GB/s', bwFor(ctx, t), `dram_read_${t}t`));
      }
    } finally {
      for (const x of [...ks, ...vs, q]) x.dispose();
    }
    return res;
  },
};

export const benches: Bench[] = [prefill, decode];
