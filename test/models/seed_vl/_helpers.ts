/** Shared fixtures for the Seed1.5-VL model tests: tiny models, random images, sequences with images. */
import assert from 'node:assert/strict';
import { Tensor, tensor, manualSeed, randn, noGrad, tidy, backward, zeros } from '../../../src/tensor/index.ts';
import { adamwStep } from '../../../src/tensor/ops/optim.ts';
import { preset } from '../../../src/models/seed_vl/presets.ts';
import { makeConfig, type SeedVLConfig, patchDim } from '../../../src/models/seed_vl/config.ts';
import { SeedVLModel } from '../../../src/models/seed_vl/model.ts';
import type { ImageBatch, ModelInputs } from '../../../src/models/seed_vl/inputs.ts';
import type { ImageGrid } from '../../../src/models/seed_vl/vision.ts';

export function tinyConfig(edit?: (c: SeedVLConfig) => void): SeedVLConfig {
  const c = preset('tiny');
  edit?.(c);
  return makeConfig(c);
}

/** The tiny config with the DeepSeek-style sigmoid router, groups and a scaling factor. */
export function tinySigmoidConfig(): SeedVLConfig {
  return tinyConfig((c) => {
    Object.assign(c.language.moe!, { scoringFunc: 'sigmoid', nGroup: 2, topkGroup: 1, routedScalingFactor: 2.5 });
  });
}

export function buildModel(cfg: SeedVLConfig, seed = 1, dtype: 'float32' | 'float64' = 'float32'): SeedVLModel {
  manualSeed(seed);
  return new SeedVLModel(cfg, { dtype });
}

/** Random pixel rows for the given images, packed. */
export function randomImages(cfg: SeedVLConfig, grids: ImageGrid[], seed: number, dtype: 'float32' | 'float64' = 'float32'): ImageBatch {
  const n = grids.reduce((a, g) => a + g.h * g.w, 0);
  return { pixelValues: randn([n, patchDim(cfg.vision)], { seed, dtype }), grids };
}

/** Text, then [SOI] placeholders×tokens [EOI] for each grid, then more text; ids from a seeded LCG. */
export function sequenceWithImages(cfg: SeedVLConfig, grids: ImageGrid[], textLen: number, seed: number): number[] {
  let s = seed;
  const word = (): number => {
    s = (s * 1103515245 + 12345) % 2147483648;
    return 10 + (s % (cfg.language.vocabSize - 10)); // ids < 10 are reserved specials in the tiny preset
  };
  const ids: number[] = [];
  for (let i = 0; i < textLen; i++) ids.push(word());
  for (const g of grids) {
    ids.push(cfg.soiTokenId);
    for (let i = 0; i < (g.h / 2) * (g.w / 2); i++) ids.push(cfg.imageTokenId);
    ids.push(cfg.eoiTokenId);
    for (let i = 0; i < textLen; i++) ids.push(word());
  }
  return ids;
}

/** Rows r0..r0+n of a 2-D tensor as nested arrays. */
export function rows(t: Tensor, r0: number, n: number): number[] {
  const w = t.shape[1];
  return t.toArray().slice(r0 * w, (r0 + n) * w);
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length, 'length mismatch');
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

export function assertClose(a: ArrayLike<number>, b: ArrayLike<number>, tol: number, what: string): void {
  const d = maxAbsDiff(a, b);
  assert.ok(d <= tol, `${what}: max abs diff ${d} > ${tol}`);
}

/** A minimal AdamW loop over all trainable parameters (the trainer is a later issue). */
export class TinyTrainer {
  private readonly state = new Map<Tensor, { m: Tensor; v: Tensor }>();
  step = 0;

  constructor(readonly model: SeedVLModel, readonly lr: number) {}

  /** One step on `batch`; returns the loss before the update. */
  train(batch: ModelInputs): number {
    this.step++;
    this.model.zeroGrad();
    const loss = tidy(() => {
      const out = this.model.forward(batch);
      backward(out.loss!);
      return out.loss!.item();
    });
    noGrad(() => {
      for (const p of this.model.parameters()) {
        if (!p.requiresGrad || !p.grad) continue;
        let s = this.state.get(p);
        if (!s) {
          s = { m: zeros(p.shape, p.dtype), v: zeros(p.shape, p.dtype) };
          this.state.set(p, s);
        }
        adamwStep(p, p.grad, s.m, s.v, { lr: this.lr, step: this.step, weightDecay: 0 });
      }
    });
    return loss;
  }
}

export { tensor };
