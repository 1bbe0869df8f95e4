/**
 * Seed1.5-VL model benchmarks (random weights):
 * - Seed-ViT forward on one 1024×1024 image (resized to 1036×1036: 74×74 = 5,476
 *   patches) at the `small` width (6 × 384) and at full Seed-ViT width (27 × 1280),
 *   as time and achieved GFLOP/s (accounting.ts FLOPs) against the measured FMA peak;
 * - `small` LLM prefill and decode tokens/s (KV cache, one sequence);
 * - one `small` training step (forward + backward + AdamW) on a packed batch, tokens/s.
 */
import * as T from '../src/tensor/index.ts';
import { adamwStep } from '../src/tensor/ops/optim.ts';
import { preset } from '../src/models/seed_vl/presets.ts';
import { imageFlops, nearestImageSide, flopsPerToken } from '../src/models/seed_vl/accounting.ts';
import { patchDim, type SeedVLConfig } from '../src/models/seed_vl/config.ts';
import { SeedViT } from '../src/models/seed_vl/vision.ts';
import { SeedVLModel } from '../src/models/seed_vl/model.ts';
import { nextTokenLabels, rowsToCuSeqlens } from '../src/models/seed_vl/inputs.ts';
import type { Bench, BenchContext, BenchResult } from './harness.ts';

function vitBench(name: string, cfgOf: () => SeedVLConfig, reps: number): Bench {
  return {
    name,
    async run(ctx: BenchContext): Promise<BenchResult[]> {
      const cfg = cfgOf();
      T.manualSeed(1);
      const vit = new SeedViT(cfg.vision);
      const side = nearestImageSide(cfg, 1024);
      const grid = { h: side / cfg.vision.patchSize, w: side / cfg.vision.patchSize };
      const pixels = T.keep(T.randn([grid.h * grid.w, patchDim(cfg.vision)], { seed: 2 }));
      const flops = imageFlops(cfg, side, side).vision;
      try {
        const t = ctx.time(() => T.noGrad(() => T.tidy(() => void vit.forward(pixels, [grid]))), { warmup: reps > 1 ? 1 : 0, reps, minMs: 0, maxMs: 0 });
        return [
          ctx.result(name, 'forward_s', t.median, 's'),
          ctx.result(name, 'gflops', flops / t.median / 1e9, 'GFLOP/s', ctx.limits.fmaPeakAll, `fma_peak_${ctx.limits.threads}t`),
        ];
      } finally {
        pixels.dispose();
        vit.dispose();
      }
    },
  };
}

/** Token ids in [10, vocab) from a seeded LCG. */
function randomIds(n: number, vocab: number, seed: number): number[] {
  let s = seed;
  return Array.from({ length: n }, () => {
    s = (s * 1103515245 + 12345) % 2147483648;
    return 10 + (s % (vocab - 10));
  });
}

const llmInference: Bench = {
  name: 'small_llm_inference',
  async run(ctx) {
    const name = 'small_llm_inference';
    const cfg = preset('small');
    T.manualSeed(3);
    const model = new SeedVLModel(cfg).eval();
    const prompt = randomIds(512, cfg.language.vocabSize, 4);
    const steps = 32;
    try {
      const pre = ctx.time(() => {
        const cache = model.createCache(1, prompt.length + 1);
        model.prefill(cache, { inputIds: prompt, rowLengths: [prompt.length] }).dispose();
        cache.dispose();
      }, { warmup: 1, reps: 3, minMs: 0 });
      const cache = model.createCache(1, prompt.length + steps + 8);
      model.prefill(cache, { inputIds: prompt, rowLengths: [prompt.length] }).dispose();
      const dec = ctx.time(() => model.decode(cache, [11]).dispose(), { warmup: 2, reps: steps, minMs: 0 });
      cache.dispose();
      const prefillFlops = prompt.length * flopsPerToken(cfg.language, prompt.length / 2);
      return [
        ctx.result(name, 'prefill_512_tokens_per_s', prompt.length / pre.median, 'tok/s'),
        ctx.result(name, 'prefill_512_gflops', prefillFlops / pre.median / 1e9, 'GFLOP/s', ctx.limits.fmaPeakAll, `fma_peak_${ctx.limits.threads}t`),
        ctx.result(name, 'decode_tokens_per_s', 1 / dec.median, 'tok/s'),
      ];
    } finally {
      model.dispose();
    }
  },
};

const trainStep: Bench = {
  name: 'small_train_step',
  async run(ctx) {
    const name = 'small_train_step';
    const cfg = preset('small');
    T.manualSeed(5);
    const model = new SeedVLModel(cfg);
    // One row of 1024 tokens: a 224×224-image sample (16×16 patches → 64 image tokens) and two text samples.
    const grid = { h: 16, w: 16 };
    const withImage = [...randomIds(100, cfg.language.vocabSize, 6), cfg.soiTokenId, ...new Array(64).fill(cfg.imageTokenId), cfg.eoiTokenId, ...randomIds(234, cfg.language.vocabSize, 7)];
    const textA = randomIds(300, cfg.language.vocabSize, 8);
    const textB = randomIds(1024 - withImage.length - 300, cfg.language.vocabSize, 9);
    const ids = Int32Array.from([...withImage, ...textA, ...textB]);
    const cuSeqlens = rowsToCuSeqlens([[withImage.length, textA.length, textB.length]], ids.length);
    const labels = nextTokenLabels(ids, cuSeqlens);
    const pixelValues = T.keep(T.randn([grid.h * grid.w, patchDim(cfg.vision)], { seed: 10 }));
    const params = model.parameters().filter((p) => p.requiresGrad);
    const moments = new Map(params.map((p) => [p, { m: T.keep(T.zeros(p.shape)), v: T.keep(T.zeros(p.shape)) }]));
    let step = 0;
    try {
      const t = ctx.time(() => {
        model.zeroGrad();
        T.tidy(() => T.backward(model.forward({ inputIds: ids, cuSeqlens, labels, images: { pixelValues, grids: [grid] } }).loss!));
        step++;
        T.noGrad(() => {
          for (const p of params) if (p.grad) adamwStep(p, p.grad, moments.get(p)!.m, moments.get(p)!.v, { lr: 1e-4, step });
        });
      }, { warmup: 1, reps: 3, minMs: 0 });
      return [
        ctx.result(name, 'step_s', t.median, 's'),
        ctx.result(name, 'tokens_per_s', ids.length / t.median, 'tok/s'),
      ];
    } finally {
      for (const { m, v } of moments.values()) (m.dispose(), v.dispose());
      pixelValues.dispose();
      model.dispose();
    }
  },
};

export const benches: Bench[] = [
  vitBench('seed_vit_small_1024', () => preset('small'), 3),
  vitBench('seed_vit_full_1024', () => preset('seed1.5-vl'), 1),
  llmInference,
  trainStep,
];
