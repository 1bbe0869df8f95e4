/**
 * Qwen-VL with real shapes, random weights, side by side with PyTorch +
 * transformers on the same checkpoint files and inputs:
 *   - qwen2_5_vl_3b: Qwen2.5-VL-3B (ViT 32 × 1280 with windows, LLM 36 × 2048, tied);
 *   - qwen3_vl_30b_a3b: Qwen3-VL-30B-A3B (ViT 27 × 1152 + deepstack, MoE LLM 2048 wide,
 *     128 experts top-8) with fewer decoder layers than 48 so it fits in memory (said in the output).
 * Metrics: vision encode of a 1024×1024 image (s), prefill tokens/s (text prompt, KV cache; best of
 * three timed prefills on each side),
 * decode tokens/s (teacher-forced tokens). Ratios: ours vs PyTorch, ≥ 1 = we are faster.
 *
 * The checkpoint (bf16, Hub layout) is written once to $SEEDVL_BENCH_DIR (default
 * /tmp/seedvl-bench-qwen). The PyTorch venv is created from the offline wheelhouse
 * (bench/peers/make_venv.sh → .bench-venv); without it the bench says so and reports ours only.
 * PyTorch runs twice when memory allows: in bfloat16 (transformers' default for these
 * checkpoints: bf16 weights and bf16 activations, AVX512-BF16 dot products) and in float32
 * (weights upcast: the same arithmetic as ours, f32 activations); f32 is skipped when
 * MemAvailable is under 2.3× the checkpoint.
 * Knobs: SEEDVL_QWEN_BENCH_MOE_LAYERS (default 5), SEEDVL_QWEN_BENCH_PROMPT (512),
 * SEEDVL_QWEN_BENCH_DECODE (16), SEEDVL_QWEN_BENCH_TORCH_DTYPES (default "bfloat16,float32"),
 * SEEDVL_QWEN_BENCH_NO_PEER=1.
 */
import { matmulPrecision } from '../src/tensor/ops/matmul.ts';
import { existsSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { join, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawnSync } from 'node:child_process';
import type { Bench, BenchContext, BenchResult } from './harness.ts';
import { tensor, numThreads, emptyCache } from '../src/tensor/index.ts';
import { saveSafetensors } from '../src/io/safetensors.ts';
import { writeRandomCheckpoint } from '../src/models/qwen_vl/random_checkpoint.ts';
import { loadQwenModel } from '../src/models/qwen_vl/load.ts';
import { preprocessRgb } from '../src/processing/preprocess.ts';
import { QWEN2_VL_VISION, QWEN3_VL_VISION, type VisionPreprocessConfig } from '../src/processing/vision_config.ts';
import type { RgbImage } from '../src/processing/resample.ts';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '..');
const env = (k: string, d: number): number => (process.env[k] ? Number(process.env[k]) : d);
/** Timed prefills per side (after one warm-up); the best is reported. */
const PREFILL_RUNS = 3;

interface Shape {
  name: string;
  config: Record<string, unknown>;
  /** Image processor of the published checkpoint (preprocessor_config.json). */
  vision: VisionPreprocessConfig;
  note: string;
}

function qwen25vl3b(): Shape {
  return {
    name: 'qwen2_5_vl_3b',
    note: 'Qwen2.5-VL-3B shapes, all 36 decoder layers',
    vision: { ...QWEN2_VL_VISION, maxPixels: 12845056 },
    config: {
      architectures: ['Qwen2_5_VLForConditionalGeneration'], model_type: 'qwen2_5_vl',
      bos_token_id: 151643, eos_token_id: 151645, vision_start_token_id: 151652, vision_end_token_id: 151653,
      vision_token_id: 151654, image_token_id: 151655, video_token_id: 151656,
      hidden_act: 'silu', hidden_size: 2048, intermediate_size: 11008, max_position_embeddings: 128000,
      num_attention_heads: 16, num_hidden_layers: 36, num_key_value_heads: 2, rms_norm_eps: 1e-6, rope_theta: 1000000.0,
      tie_word_embeddings: true, torch_dtype: 'bfloat16', vocab_size: 151936,
      rope_scaling: { type: 'mrope', mrope_section: [16, 24, 24] },
      vision_config: {
        depth: 32, hidden_act: 'silu', hidden_size: 1280, intermediate_size: 3420, num_heads: 16, in_chans: 3,
        out_hidden_size: 2048, patch_size: 14, spatial_merge_size: 2, spatial_patch_size: 14, window_size: 112,
        fullatt_block_indexes: [7, 15, 23, 31], tokens_per_second: 2, temporal_patch_size: 2,
      },
    },
  };
}

function qwen3vl30b(layers: number): Shape {
  return {
    name: 'qwen3_vl_30b_a3b',
    note: `Qwen3-VL-30B-A3B shapes with ${layers} of its 48 decoder layers (memory: 1.25 GB of bf16 experts per layer); per-token numbers scale with the layer count`,
    vision: { ...QWEN3_VL_VISION },
    config: {
      architectures: ['Qwen3VLMoeForConditionalGeneration'], model_type: 'qwen3_vl_moe',
      image_token_id: 151655, video_token_id: 151656, vision_start_token_id: 151652, vision_end_token_id: 151653,
      tie_word_embeddings: false,
      text_config: {
        model_type: 'qwen3_vl_moe_text', attention_bias: false, bos_token_id: 151643, eos_token_id: 151645,
        decoder_sparse_step: 1, head_dim: 128, hidden_act: 'silu', hidden_size: 2048, intermediate_size: 6144,
        max_position_embeddings: 262144, mlp_only_layers: [], moe_intermediate_size: 768, norm_topk_prob: true,
        num_attention_heads: 32, num_experts: 128, num_experts_per_tok: 8, num_hidden_layers: layers, num_key_value_heads: 4,
        rms_norm_eps: 1e-6, rope_scaling: { rope_type: 'default', mrope_section: [24, 20, 20], mrope_interleaved: true },
        rope_theta: 5000000.0, vocab_size: 151936, dtype: 'bfloat16',
      },
      vision_config: {
        model_type: 'qwen3_vl_moe', deepstack_visual_indexes: [8, 16, 24], depth: 27, hidden_act: 'gelu_pytorch_tanh',
        hidden_size: 1152, in_channels: 3, intermediate_size: 4304, num_heads: 16, num_position_embeddings: 2304,
        out_hidden_size: 2048, patch_size: 16, spatial_merge_size: 2, temporal_patch_size: 2,
      },
    },
  };
}

function syntheticImage(w: number, h: number): RgbImage {
  const data = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const i = 3 * (y * w + x);
      data[i] = (x * 255) / (w - 1);
      data[i + 1] = (y * 255) / (h - 1);
      data[i + 2] = 40 + 160 * (((x >> 3) + (y >> 3)) & 1);
    }
  }
  return { width: w, height: h, data };
}

interface Prepared {
  dir: string;
  inputs: string;
  spec: string;
  grid: { t: number; h: number; w: number };
  warmGrid: { t: number; h: number; w: number };
  pixels: Float32Array;
  warmPixels: Float32Array;
  promptIds: number[];
  decodeIds: number[];
  params: number;
}

function prepare(ctx: BenchContext, s: Shape): Prepared {
  const base = process.env.SEEDVL_BENCH_DIR ?? '/tmp/seedvl-bench-qwen';
  const configText = JSON.stringify(s.config);
  const dir = join(base, s.name);
  let params = 0;
  const stamp = join(dir, 'config.json');
  if (!existsSync(stamp) || readFileSync(stamp, 'utf8') !== JSON.stringify(s.config, null, 1)) {
    ctx.note(`${s.name}: writing random bf16 weights to ${dir} (once)`);
    mkdirSync(base, { recursive: true });
    params = writeRandomCheckpoint(dir, JSON.parse(configText), { seed: 7 }).params;
  }
  const img = preprocessRgb(syntheticImage(1024, 1024), s.vision);
  const warm = preprocessRgb(syntheticImage(224, 224), s.vision);
  const P = env('SEEDVL_QWEN_BENCH_PROMPT', 512), D = env('SEEDVL_QWEN_BENCH_DECODE', 16);
  const promptIds = Array.from({ length: P }, (_, i) => 1000 + ((i * 7919) % 100000));
  const decodeIds = Array.from({ length: D }, (_, i) => 2000 + ((i * 104729) % 90000));
  const inputs = join(base, `${s.name}.inputs.safetensors`);
  const spec = join(base, `${s.name}.spec.json`);
  const px = tensor(img.pixelValues, img.shape), wpx = tensor(warm.pixelValues, warm.shape);
  saveSafetensors(inputs, { pixel_values: px, warm_pixel_values: wpx });
  px.dispose();
  wpx.dispose();
  const triple = (g: { t: number; h: number; w: number }) => [g.t, g.h, g.w];
  writeFileSync(spec, JSON.stringify({ grid_thw: [triple(img.grid)], warm_grid_thw: [triple(warm.grid)], prompt_ids: promptIds, decode_ids: decodeIds }));
  return { dir, inputs, spec, grid: img.grid, warmGrid: warm.grid, pixels: img.pixelValues, warmPixels: warm.pixelValues, promptIds, decodeIds, params };
}

interface Timings {
  vision_s: number;
  prefill_s: number;
  decode_s: number;
}

const now = (): number => performance.now() / 1000;

function runOurs(p: Prepared, patchDim: number, experts: 'view' | 'copy' = 'view', vision = true): Timings & { load_s: number } {
  let t0 = now();
  const { model } = loadQwenModel(p.dir, { experts });
  const load_s = now() - t0;
  try {
    const encode = (px: Float32Array, grid: Prepared['grid']) => {
      const pixelValues = tensor(px, [px.length / patchDim, patchDim]);
      const out = model.encode({ pixelValues, grids: [grid] });
      out.embeds.dispose();
      for (const d of out.deepstack) d.dispose();
      pixelValues.dispose();
    };
    let vision_s = NaN;
    if (vision) {
      encode(p.warmPixels, p.warmGrid);
      t0 = now();
      encode(p.pixels, p.grid);
      vision_s = now() - t0;
    }
    const prefill = () => {
      const cache = model.createCache(1, p.promptIds.length + p.decodeIds.length + 1);
      model.prefill(cache, { inputIds: p.promptIds }).dispose();
      return cache;
    };
    prefill().dispose(); // warm-up: every weight touched once
    // Best of PREFILL_RUNS timed prefills (the PyTorch peer does the same): one run on a shared VM varies by ~10%.
    let prefill_s = Infinity, cache = null as ReturnType<typeof prefill> | null;
    for (let r = 0; r < PREFILL_RUNS; r++) {
      cache?.dispose();
      t0 = now();
      cache = prefill();
      prefill_s = Math.min(prefill_s, now() - t0);
    }
    t0 = now();
    for (const tok of p.decodeIds) model.decode(cache!, [tok]).dispose();
    const decode_s = now() - t0;
    cache!.dispose();
    return { load_s, vision_s, prefill_s, decode_s };
  } finally {
    model.dispose();
    emptyCache(); // give the activations' cached blocks back before the peer needs the memory
  }
}

/** MemAvailable from /proc/meminfo, bytes (Infinity where unknown). */
function memAvailable(): number {
  try {
    const m = /MemAvailable:\s+(\d+) kB/.exec(readFileSync('/proc/meminfo', 'utf8'));
    return m ? Number(m[1]) * 1024 : Infinity;
  } catch {
    return Infinity;
  }
}

function checkpointBytes(dir: string): number {
  const index = JSON.parse(readFileSync(join(dir, 'model.safetensors.index.json'), 'utf8'));
  return Number(index.metadata?.total_size ?? 0);
}

type PeerResult = Timings & { dtype: string; torch: string; transformers: string };

function runPeer(ctx: BenchContext, p: Prepared, dtype: string): PeerResult | null {
  if (process.env.SEEDVL_QWEN_BENCH_NO_PEER) {
    ctx.note('PyTorch peer skipped (SEEDVL_QWEN_BENCH_NO_PEER)');
    return null;
  }
  const venv = process.env.SEEDVL_BENCH_VENV ?? join(root, '.bench-venv');
  if (!existsSync(join(venv, '.complete'))) {
    const mk = spawnSync('bash', [join(here, 'peers/make_venv.sh'), venv], { encoding: 'utf8' });
    if (mk.status !== 0) {
      ctx.note(`PyTorch peer unavailable: could not create ${venv} from the wheelhouse (${(mk.stderr || mk.stdout).trim().slice(0, 300)})`);
      return null;
    }
  }
  if (dtype === 'float32' && memAvailable() < 2.3 * checkpointBytes(p.dir)) {
    ctx.note(`PyTorch float32 skipped: ${(memAvailable() / 2 ** 30).toFixed(1)} GiB available, the f32 copy of the weights needs ${((2 * checkpointBytes(p.dir)) / 2 ** 30).toFixed(1)} GiB`);
    return null;
  }
  const r = spawnSync(join(venv, 'bin/python'), [join(here, 'peers/torch_qwen.py'), '--model', p.dir, '--inputs', p.inputs, '--spec', p.spec, '--dtype', dtype, '--threads', String(numThreads()), '--prefill-runs', String(PREFILL_RUNS)], {
    encoding: 'utf8', timeout: 1800_000, maxBuffer: 1 << 24,
    env: { ...process.env, HF_HUB_OFFLINE: '1', TRANSFORMERS_OFFLINE: '1', TRANSFORMERS_VERBOSITY: 'error', TOKENIZERS_PARALLELISM: 'false' },
  });
  const line = (r.stdout ?? '').trim().split('\n').pop() ?? '';
  try {
    const j = JSON.parse(line);
    if (j.error) throw new Error(j.error);
    return j;
  } catch (e) {
    ctx.note(`PyTorch peer failed (exit ${r.status}${r.signal ? `, ${r.signal}` : ''}): ${(e as Error).message} ${(r.stderr ?? '').trim().split('\n').slice(-3).join(' | ')}`);
    return null;
  }
}

function qwenBench(make: () => Shape): Bench {
  return {
    name: make().name,
    async run(ctx) {
      const s = make();
      ctx.note(s.note);
      const p = prepare(ctx, s);
      const patchDim = p.pixels.length / (p.grid.t * p.grid.h * p.grid.w);
      ctx.note(`image 1024×1024 → grid ${p.grid.h}×${p.grid.w} patches (${(p.grid.h * p.grid.w) / 4} LLM tokens); prompt ${p.promptIds.length} tokens; decode ${p.decodeIds.length} tokens; ${numThreads()} threads`);
      const ours = runOurs(p, patchDim);
      // MoE: the experts also as contiguous [out, in] copies instead of views of the Hub layout.
      const moe = !!(s.config as { text_config?: { num_experts?: number } }).text_config?.num_experts;
      const copied = moe ? runOurs(p, patchDim, 'copy', false) : null;
      const dtypes = (process.env.SEEDVL_QWEN_BENCH_TORCH_DTYPES ?? 'bfloat16,float32').split(',').filter(Boolean);
      const peers = dtypes.map((d) => runPeer(ctx, p, d)).filter((x): x is PeerResult => x !== null);
      if (peers.length) ctx.note(`PyTorch ${peers[0].torch}, transformers ${peers[0].transformers}; ours: bf16 weights read by the kernels, ${matmulPrecision() === 'bf16' ? 'bf16 matmul activations (SEEDVL_MATMUL_PRECISION=bf16)' : 'f32 activations'}`);
      const P = p.promptIds.length, D = p.decodeIds.length;
      const out: BenchResult[] = [];
      const b = s.name;
      out.push(ctx.result(b, 'load (s, memory-mapped)', ours.load_s, 's'));
      out.push(ctx.result(b, 'vision encode 1024x1024 (s)', ours.vision_s, 's'));
      out.push(ctx.result(b, 'prefill tokens/s', P / ours.prefill_s, 'tok/s'));
      out.push(ctx.result(b, 'decode tokens/s', D / ours.decode_s, 'tok/s'));
      if (copied) {
        out.push(ctx.result(b, 'experts copied: load (s)', copied.load_s, 's'));
        out.push(ctx.result(b, 'experts copied: prefill tokens/s', P / copied.prefill_s, 'tok/s', P / ours.prefill_s, 'views'));
        out.push(ctx.result(b, 'experts copied: decode tokens/s', D / copied.decode_s, 'tok/s', D / ours.decode_s, 'views'));
      }
      for (const peer of peers) {
        const t = `torch ${peer.dtype === 'bfloat16' ? 'bf16' : 'f32'}`;
        out.push(ctx.result(b, `${t}: vision encode 1024x1024 (s)`, peer.vision_s, 's'));
        out.push(ctx.result(b, `${t}: prefill tokens/s`, P / peer.prefill_s, 'tok/s'));
        out.push(ctx.result(b, `${t}: decode tokens/s`, D / peer.decode_s, 'tok/s'));
        // Ratios ≥ 1: we are faster (time ratio torch/ours for vision, rate ratio ours/torch for tokens).
        out.push(ctx.result(b, `vision ours/${t} (speed)`, peer.vision_s / ours.vision_s, 'x', 1, 'parity'));
        out.push(ctx.result(b, `prefill ours/${t}`, peer.prefill_s / ours.prefill_s, 'x', 1, 'parity'));
        out.push(ctx.result(b, `decode ours/${t}`, peer.decode_s / ours.decode_s, 'x', 1, 'parity'));
      }
      return out;
    },
  };
}

export const benches: Bench[] = [
  qwenBench(qwen25vl3b),
  qwenBench(() => qwen3vl30b(env('SEEDVL_QWEN_BENCH_MOE_LAYERS', 5))),
];
