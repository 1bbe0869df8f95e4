/**
 * Matrix multiplication benches, each with onnxruntime-node (CPU EP, B as a
 * constant initializer, spinning disabled) on the same shape in the same run:
 *  - GEMM f32 1024³ on 1 and all threads (ratio to the matching FMA peak, scaling);
 *  - prefill GEMM 256×4096×4096, x·Wᵀ with W [N, K] in f32 and bf16;
 *  - decode GEMV 1×4096×4096, f32 and bf16 weights, rotating over a weight set
 *    larger than twice the last-level cache so every call streams from DRAM
 *    (ratio of weight bytes per second to the measured DRAM read bandwidth).
 */
import * as T from '../src/tensor/index.ts';
import { linear, matmul } from '../src/tensor/ops/matmul.ts';
import type { Bench, BenchContext, BenchResult } from './harness.ts';

// ------------------------------------------------------------ onnxruntime peer

// A minimal protobuf writer: varints and length-delimited fields.
function varint(n: number): number[] {
  let v = BigInt(n);
  const out: number[] = [];
  do {
    let byte = Number(v & 0x7fn);
    v >>= 7n;
    if (v) byte |= 0x80;
    out.push(byte);
  } while (v);
  return out;
}
const fVarint = (field: number, n: number): number[] => [...varint(field << 3), ...varint(n)];
const fBytes = (field: number, b: ArrayLike<number>): number[] => [...varint((field << 3) | 2), ...varint(b.length), ...Array.from(b)];
const fString = (field: number, s: string): number[] => fBytes(field, new TextEncoder().encode(s));
const concat = (parts: Uint8Array[]): Uint8Array => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) (out.set(p, at), (at += p.length));
  return out;
};

function valueInfo(name: string, dims: number[]): number[] {
  const shape = dims.flatMap((d) => fBytes(1, fVarint(1, d))); // dim { dim_value }
  return [...fString(1, name), ...fBytes(2, fBytes(1, [...fVarint(1, 1), ...fBytes(2, shape)]))]; // type { tensor_type { FLOAT, shape } }
}

/** ONNX ModelProto: Y[M,N] = MatMul(A[M,K], B) with B a float32 [K,N] initializer. */
function matmulModel(M: number, K: number, N: number, b: Float32Array): Uint8Array {
  const node = [...fString(1, 'A'), ...fString(1, 'B'), ...fString(2, 'Y'), ...fString(4, 'MatMul')];
  const raw = new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
  const initHead = Uint8Array.from([...fVarint(1, K), ...fVarint(1, N), ...fVarint(2, 1), ...fString(8, 'B'), ...varint((9 << 3) | 2), ...varint(raw.length)]);
  const init = concat([initHead, raw]); // TensorProto { dims, data_type FLOAT, name, raw_data }
  const graph = concat([
    Uint8Array.from([...fBytes(1, node), ...fString(2, 'matmul'), ...varint((5 << 3) | 2), ...varint(init.length)]),
    init,
    Uint8Array.from([...fBytes(11, valueInfo('A', [M, K])), ...fBytes(12, valueInfo('Y', [M, N]))]),
  ]);
  const head = Uint8Array.from([...fVarint(1, 8), ...fBytes(8, [...fString(1, ''), ...fVarint(2, 17)]), ...varint((7 << 3) | 2), ...varint(graph.length)]);
  return concat([head, graph]); // { ir_version 8, opset_import { "", 17 }, graph }
}

interface OrtSession { run(feeds: Record<string, unknown>): Promise<unknown>; release(): Promise<void> }
interface Ort {
  InferenceSession: { create(model: Uint8Array, options: object): Promise<OrtSession> };
  Tensor: new (type: 'float32', data: Float32Array, dims: number[]) => unknown;
}
let ortCache: Ort | null | undefined;
async function loadOrt(ctx: BenchContext): Promise<Ort | null> {
  if (ortCache === undefined) {
    try {
      const name = 'onnxruntime-node'; // a variable, so a missing package is a runtime condition
      const m = (await import(name)) as Ort & { default?: Ort };
      ortCache = m.InferenceSession ? m : (m.default ?? null);
    } catch (e) {
      ortCache = null;
      ctx.note(`onnxruntime-node is not installed (${(e as Error).message.split('\n')[0]}); skipping the ORT comparison`);
    }
  }
  return ortCache;
}

function ortSession(ort: Ort, M: number, K: number, N: number, b: Float32Array, threads: number): Promise<OrtSession> {
  return ort.InferenceSession.create(matmulModel(M, K, N, b), {
    executionProviders: ['cpu'],
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    graphOptimizationLevel: 'all',
    extra: { session: { intra_op: { allow_spinning: '0' }, inter_op: { allow_spinning: '0' } } },
  });
}

// ------------------------------------------------------------ helpers

/** The thread counts compared: 1 and all of the pool's. */
const threadCounts = (ctx: BenchContext): number[] => [...new Set([1, ctx.limits.threads])];

function withThreads<R>(n: number, f: () => R): R {
  const prev = T.numThreads();
  T.setNumThreads(n);
  try {
    return f();
  } finally {
    T.setNumThreads(prev);
  }
}
async function withThreadsAsync<R>(n: number, f: () => Promise<R>): Promise<R> {
  const prev = T.numThreads();
  T.setNumThreads(n);
  try {
    return await f();
  } finally {
    T.setNumThreads(prev);
  }
}

const peakFor = (ctx: BenchContext, t: number): number => (t === 1 ? ctx.limits.fmaPeak1 : ctx.limits.fmaPeakAll);
const bwFor = (ctx: BenchContext, t: number): number => (t === 1 ? ctx.limits.dramRead1 : ctx.limits.dramReadAll);

/** Times ORT on one session per thread count (B: [K,N] row-major, i.e. Wᵀ for our linear). */
async function ortGemm(ctx: BenchContext, name: string, M: number, K: number, N: number, bKN: Float32Array, ours: Map<number, number>): Promise<BenchResult[]> {
  const ort = await loadOrt(ctx);
  if (!ort) return [];
  const out: BenchResult[] = [];
  const a = new ort.Tensor('float32', new Float32Array(M * K).fill(0.5), [M, K]);
  for (const t of threadCounts(ctx)) {
    const s = await ortSession(ort, M, K, N, bKN, t);
    const tm = await ctx.timeAsync(() => s.run({ A: a }), { reps: 7, minMs: 300 });
    await s.release();
    const gf = (2 * M * N * K) / tm.median / 1e9;
    out.push(ctx.result(name, `ort_gflops_${t}t`, gf, 'GFLOP/s', peakFor(ctx, t), `fma_peak_${t}t`));
    const mine = ours.get(t);
    if (mine) out.push(ctx.result(name, `ours_vs_ort_${t}t`, mine / gf, 'x'));
  }
  return out;
}

// ------------------------------------------------------------ benches

const gemm1024: Bench = {
  name: 'gemm_f32_1024',
  async run(ctx) {
    const n = 1024;
    const a = T.full([n, n], 0.5), b = T.full([n, n], 0.25);
    const res: BenchResult[] = [];
    const ours = new Map<number, number>();
    for (const t of threadCounts(ctx)) {
      const tm = withThreads(t, () => ctx.time(() => matmul(a, b).dispose(), { reps: 9, minMs: 300 }));
      const gf = (2 * n * n * n) / tm.median / 1e9;
      ours.set(t, gf);
      res.push(ctx.result('gemm_f32_1024', `gflops_${t}t`, gf, 'GFLOP/s', peakFor(ctx, t), `fma_peak_${t}t`));
    }
    if (ours.size > 1) {
      const t = ctx.limits.threads;
      res.push(ctx.result('gemm_f32_1024', `scaling_${t}t_vs_1t`, ours.get(t)! / ours.get(1)!, 'x', t, `${t}x ideal`));
    }
    res.push(...(await ortGemm(ctx, 'gemm_f32_1024', n, n, n, b.data<Float32Array>(), ours)));
    a.dispose();
    b.dispose();
    return res;
  },
};

const prefill: Bench = {
  name: 'gemm_prefill_256x4096x4096',
  async run(ctx) {
    const M = 256, K = 4096, N = 4096, name = 'gemm_prefill_256x4096x4096';
    const x = T.full([M, K], 0.5), w = T.full([N, K], 0.01), wb = T.cast(w, 'bfloat16');
    const res: BenchResult[] = [];
    const ours = new Map<number, number>();
    for (const t of threadCounts(ctx)) {
      const tm = withThreads(t, () => ctx.time(() => linear(x, w).dispose(), { reps: 5, minMs: 300 }));
      const gf = (2 * M * N * K) / tm.median / 1e9;
      ours.set(t, gf);
      res.push(ctx.result(name, `f32_gflops_${t}t`, gf, 'GFLOP/s', peakFor(ctx, t), `fma_peak_${t}t`));
      const tb = withThreads(t, () => ctx.time(() => linear(x, wb).dispose(), { reps: 5, minMs: 300 }));
      const gfb = (2 * M * N * K) / tb.median / 1e9;
      res.push(ctx.result(name, `bf16w_gflops_${t}t`, gfb, 'GFLOP/s', peakFor(ctx, t), `fma_peak_${t}t`));
    }
    // ORT's MatMul takes B as [K, N]: the same numbers as Wᵀ.
    const wT = T.full([K, N], 0.01);
    res.push(...(await ortGemm(ctx, name, M, K, N, wT.data<Float32Array>(), ours)));
    for (const z of [x, w, wb, wT]) z.dispose();
    return res;
  },
};

/** Decode GEMV over a rotating weight set of >= 2x the LLC, so each call streams its weights from DRAM. */
function gemvBench(dtype: 'float32' | 'bfloat16'): Bench {
  const name = `gemv_${dtype === 'float32' ? 'f32' : 'bf16'}_1x4096x4096_dram`;
  return {
    name,
    async run(ctx) {
      const K = 4096, N = 4096, bytesPer = N * K * (dtype === 'float32' ? 4 : 2);
      const count = Math.max(4, Math.ceil((2 * ctx.limits.llcBytes) / bytesPer));
      ctx.note(`${name}: rotating over ${count} weight matrices (${((count * bytesPer) / 2 ** 20).toFixed(0)} MiB)`);
      const ws = Array.from({ length: count }, (_, i) => T.full([N, K], 0.001 * (i + 1), dtype));
      const x = T.full([1, K], 0.5);
      const res: BenchResult[] = [];
      const ours = new Map<number, number>();
      try {
        for (const t of threadCounts(ctx)) {
          let i = 0;
          const tm = withThreads(t, () => ctx.time(() => linear(x, ws[i++ % count]).dispose(), { warmup: count, reps: 2 * count, minMs: 300 }));
          const gbs = bytesPer / tm.median / 1e9;
          ours.set(t, (2 * N * K) / tm.median / 1e9);
          res.push(ctx.result(name, `weights_gbs_${t}t`, gbs, 'GB/s', bwFor(ctx, t), `dram_read_${t}t`));
          res.push(ctx.result(name, `gflops_${t}t`, ours.get(t)!, 'GFLOP/s'));
        }
      } finally {
        for (const w of ws) w.dispose();
        x.dispose();
      }
      if (dtype === 'float32') res.push(...(await ortGemv(ctx, name, K, N, count, ours)));
      else ctx.note(`${name}: no ORT peer (its CPU MatMul has no bfloat16 kernel)`);
      return res;
    },
  };
}

/** ORT on the same rotation: one session (one [K, N] initializer) per weight matrix. */
async function ortGemv(ctx: BenchContext, name: string, K: number, N: number, count: number, ours: Map<number, number>): Promise<BenchResult[]> {
  const ort = await loadOrt(ctx);
  if (!ort) return [];
  const res: BenchResult[] = [];
  const a = new ort.Tensor('float32', new Float32Array(K).fill(0.5), [1, K]);
  for (const t of threadCounts(ctx)) {
    const sessions: OrtSession[] = [];
    try {
      for (let i = 0; i < count; i++) sessions.push(await ortSession(ort, 1, K, N, new Float32Array(K * N).fill(0.001 * (i + 1)), t));
      let i = 0;
      const tm = await ctx.timeAsync(() => sessions[i++ % count].run({ A: a }), { warmup: count, reps: 2 * count, minMs: 300 });
      const gf = (2 * N * K) / tm.median / 1e9;
      res.push(ctx.result(name, `ort_weights_gbs_${t}t`, (4 * N * K) / tm.median / 1e9, 'GB/s', bwFor(ctx, t), `dram_read_${t}t`));
      res.push(ctx.result(name, `ort_gflops_${t}t`, gf, 'GFLOP/s'));
      const mine = ours.get(t);
      if (mine) res.push(ctx.result(name, `ours_vs_ort_${t}t`, mine / gf, 'x'));
    } finally {
      for (const s of sessions) await s.release();
    }
  }
  return res;
}

export const benches: Bench[] = [gemm1024, prefill, gemvBench('float32'), gemvBench('bfloat16')];
