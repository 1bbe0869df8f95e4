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
 *  - bf16 (attention_bf16_*): the AMX bf16 forward (setMatmulPrecision('bf16')) on
 *    the shapes of the Qwen VL models, at all pool threads, against PyTorch's bf16
 *    F.scaled_dot_product_attention measured in the same run (bench/peers/
 *    torch_attention.py, interleaved: peer, ours, peer, ours; best time of each):
 *    Qwen2.5-VL vision full attention (5476 patches, 16×80), its window attention
 *    (windows of 64/16/4 patches as a 1036² image gives), and a causal 512-token
 *    prefill with 16 query / 2 kv heads × 128. Ratio = ours / torch (below 1: faster).
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as T from '../src/tensor/index.ts';
import { attention, attentionDecode, attentionUsesBf16 } from '../src/tensor/ops/attention.ts';
import { setMatmulPrecision } from '../src/tensor/ops/matmul.ts';
import type { Bench, BenchContext, BenchResult } from './harness.ts';

const here = dirname(fileURLToPath(import.meta.url));

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

interface Bf16Case { name: string; T: number; hq: number; hkv: number; d: number; causal: boolean; windows: number[] | null }

/** Window sizes of Qwen2.5-VL on a 1036² image: 74×74 patches, 8×8-patch windows (the last row/column partial). */
function visionWindows(): number[] {
  const cells = 37, ws = 4, unit = 4; // merge cells per side, cells per window side, patches per cell
  const sizes: number[] = [];
  for (let r = 0; r < cells; r += ws) for (let c = 0; c < cells; c += ws) sizes.push(Math.min(ws, cells - r) * Math.min(ws, cells - c) * unit);
  return sizes;
}

const bf16Cases: Bf16Case[] = [
  { name: 'vision_full_5476_16x80', T: 5476, hq: 16, hkv: 16, d: 80, causal: false, windows: null },
  { name: 'vision_window64_5476_16x80', T: 5476, hq: 16, hkv: 16, d: 80, causal: false, windows: visionWindows() },
  { name: 'prefill_causal_512_16q2kv_x128', T: 512, hq: 16, hkv: 2, d: 128, causal: true, windows: null },
];

type PeerTimes = Record<string, { min_ms: number; median_ms: number; reps: number }>;

function torchPeer(ctx: BenchContext, threads: number): PeerTimes | null {
  const python = join(process.env.SEEDVL_BENCH_VENV ?? join(here, '..', '.bench-venv'), 'bin/python');
  if (!existsSync(python)) {
    ctx.note(`attention_bf16: PyTorch peer unavailable (${python} missing; bench/peers/make_venv.sh creates it)`);
    return null;
  }
  const r = spawnSync(python, [join(here, 'peers/torch_attention.py'), '--threads', String(threads), '--cases', JSON.stringify(bf16Cases)],
    { encoding: 'utf8', timeout: 600_000, maxBuffer: 1 << 22 });
  try {
    return JSON.parse((r.stdout ?? '').trim().split('\n').pop() ?? '') as PeerTimes;
  } catch {
    ctx.note(`attention_bf16: PyTorch peer failed (exit ${r.status}): ${(r.stderr ?? '').trim().split('\n').slice(-3).join(' | ')}`);
    return null;
  }
}

const bf16: Bench = {
  name: 'attention_bf16_qwen_vl_shapes',
  async run(ctx) {
    const name = 'attention_bf16_qwen_vl_shapes';
    const t = ctx.limits.threads;
    const inputs = bf16Cases.map((c, i) => {
      const cu = [0];
      for (const w of c.windows ?? [c.T]) cu.push(cu[cu.length - 1] + w);
      return { c, cu, q: filled([c.T, c.hq, c.d], 100 + 3 * i), k: filled([c.T, c.hkv, c.d], 101 + 3 * i), v: filled([c.T, c.hkv, c.d], 102 + 3 * i) };
    });
    const prev = setMatmulPrecision('bf16');
    const best = new Map<string, { bf16: number; f32: number; torch: number }>();
    const res: BenchResult[] = [];
    try {
      if (!attentionUsesBf16(inputs[0].q, inputs[0].k, inputs[0].v)) {
        ctx.note(`${name}: skipped (no AMX-BF16 here: attention stays f32)`);
        return res;
      }
      for (let round = 0; round < 2; round++) {
        const peer = torchPeer(ctx, t);
        for (const { c, cu, q, k, v } of inputs) {
          const opts = { causal: c.causal, cuSeqlens: cu };
          const run = (): void => attention(q, k, v, opts).dispose();
          const heavy = c.T * c.T > 1e7;
          const tb = withThreads(t, () => ctx.time(run, { warmup: 1, reps: heavy ? 3 : 10, minMs: 300 }));
          setMatmulPrecision('f32');
          const tf = round === 0 ? withThreads(t, () => ctx.time(run, { warmup: 1, reps: heavy ? 2 : 5, minMs: 200 })) : null;
          setMatmulPrecision('bf16');
          const b = best.get(c.name) ?? { bf16: Infinity, f32: Infinity, torch: Infinity };
          b.bf16 = Math.min(b.bf16, tb.min);
          if (tf) b.f32 = Math.min(b.f32, tf.min);
          if (peer?.[c.name]) b.torch = Math.min(b.torch, peer[c.name].min_ms / 1e3);
          best.set(c.name, b);
        }
      }
      for (const { c } of inputs) {
        const b = best.get(c.name)!;
        const torch = Number.isFinite(b.torch) ? b.torch * 1e3 : null;
        res.push(ctx.result(`${name}`, `${c.name}_bf16_ms_${t}t`, b.bf16 * 1e3, 'ms', torch, torch ? 'torch_sdpa_bf16_ms' : null));
        if (torch) res.push(ctx.result(`${name}`, `${c.name}_torch_sdpa_bf16_ms_${t}t`, torch, 'ms'));
        res.push(ctx.result(`${name}`, `${c.name}_f32_ms_${t}t`, b.f32 * 1e3, 'ms', b.bf16 * 1e3, 'bf16_ms'));
      }
    } finally {
      setMatmulPrecision(prev);
      for (const { q, k, v } of inputs) for (const x of [q, k, v]) x.dispose();
    }
    return res;
  },
};

export const benches: Bench[] = [prefill, decode, bf16];
