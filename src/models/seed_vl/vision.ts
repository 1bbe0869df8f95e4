/**
 * Seed-ViT (spec §2.2–2.3): linear patch embedding of 14×14×3 patches, pre-LN
 * transformer blocks with biased fused QKV and output projections, 2D RoPE
 * (half the rotary frequencies follow the patch row, half the column), a GELU
 * MLP of ratio 4, and a final LayerNorm.
 *
 * NaViT packing: the patches of several images (or video frames) of different
 * sizes form one sequence [N, 588]; attention is block-diagonal per image, so
 * packing never changes an image's features. Inside an image the patches are
 * in merge-window order (each 2×2 pooling window is four consecutive rows),
 * which is what `src/processing/patchify.ts` produces.
 *
 * Weight names follow the Qwen2-VL vision tower (`blocks.{i}.attn.qkv`, …) so
 * its weights can serve as a numeric oracle (open-models §13).
 */
import { Module, Linear, LayerNorm, activationKind, mlpForward } from '../../nn/index.ts';
import { Tensor, tidy, type Activation } from '../../tensor/index.ts';
import { reshape, select } from '../../tensor/ops/view.ts';
import { add } from '../../tensor/ops/elementwise.ts';
import { attention } from '../../tensor/ops/attention.ts';
import { applyRope, rope2dTable, type RopeTable } from '../../tensor/ops/rope.ts';
import { type VisionConfig, visionHeadDim, visionMlpSize, patchDim, tokenPixels } from './config.ts';

export type FloatDType = 'float32' | 'float64';

/** One image (or video frame) as a grid of patches: h rows × w columns. */
export interface ImageGrid {
  h: number;
  w: number;
}

/**
 * Checks that `grids` describe `numPatches` patch rows and that every image is
 * a whole number of 2×2 merge windows (its pixel size a multiple of 28).
 * Returns the block-diagonal attention boundaries (prefix sums of h·w).
 */
export function imageSegments(v: VisionConfig, grids: readonly ImageGrid[], numPatches: number): number[] {
  const unit = tokenPixels(v);
  const cu = [0];
  grids.forEach((g, i) => {
    if (!Number.isInteger(g?.h) || !Number.isInteger(g?.w) || g.h < 1 || g.w < 1) {
      throw new RangeError(`Seed-ViT: image ${i} has grid ${JSON.stringify(g)}; h and w must be positive integers (patches)`);
    }
    if (g.h % v.mergeSize !== 0 || g.w % v.mergeSize !== 0) {
      throw new RangeError(
        `Seed-ViT: image ${i} is ${g.w * v.patchSize}×${g.h * v.patchSize} px (${g.w}×${g.h} patches); ` +
          `width and height must be multiples of ${unit} px — resize it first`,
      );
    }
    cu.push(cu[i] + g.h * g.w);
  });
  if (cu[cu.length - 1] !== numPatches) {
    throw new RangeError(`Seed-ViT: the image grids hold ${cu[cu.length - 1]} patches but pixelValues has ${numPatches} rows`);
  }
  return cu;
}

/** Multi-head self-attention within each image, 2D RoPE on q and k. */
/** Existing parts of a VisionAttention (see its constructor). */
export interface VisionAttentionParts {
  qkv: Linear;
  proj: Linear;
  numHeads: number;
  headDim: number;
}

export class VisionAttention extends Module {
  readonly qkv: Linear;
  readonly proj: Linear;
  readonly numHeads: number;
  readonly headDim: number;

  /** `v` the config for new random projections, or existing qkv [3C, C] / proj [C, C] Linears with the head layout (fromLinears). */
  constructor(v: VisionConfig | VisionAttentionParts, dtype: FloatDType = 'float32') {
    super();
    if ('qkv' in v) {
      const C = v.proj.outFeatures;
      if (v.numHeads * v.headDim !== C || v.qkv.inFeatures !== C || v.qkv.outFeatures !== 3 * C || v.proj.inFeatures !== C) {
        throw new RangeError(`VisionAttention: qkv ${v.qkv.inFeatures} → ${v.qkv.outFeatures} and proj ${v.proj.inFeatures} → ${C} do not fit ${v.numHeads} heads × ${v.headDim}`);
      }
      this.numHeads = v.numHeads;
      this.headDim = v.headDim;
      this.qkv = this.module('qkv', v.qkv);
      this.proj = this.module('proj', v.proj);
      return;
    }
    this.numHeads = v.numHeads;
    this.headDim = visionHeadDim(v);
    this.qkv = this.module('qkv', new Linear(v.hiddenSize, 3 * v.hiddenSize, { dtype }));
    this.proj = this.module('proj', new Linear(v.hiddenSize, v.hiddenSize, { dtype }));
  }

  /** Around existing projections (e.g. a checkpoint's mapped weights). */
  static fromLinears(qkv: Linear, proj: Linear, numHeads: number, headDim: number): VisionAttention {
    return new VisionAttention({ qkv, proj, numHeads, headDim });
  }

  /** x [N, C], rope tables [N, headDim/2], cuSeqlens: image boundaries. */
  forward(x: Tensor, rope: RopeTable, cuSeqlens: readonly number[]): Tensor {
    const [N, C] = x.shape;
    const qkv = reshape(this.qkv.forward(x), [N, 3, this.numHeads, this.headDim]); // rows: q | k | v
    const q = applyRope(select(qkv, 1, 0), rope.cos, rope.sin);                     // [N, H, D]
    const k = applyRope(select(qkv, 1, 1), rope.cos, rope.sin);
    const v = select(qkv, 1, 2);
    const o = attention(q, k, v, { cuSeqlens });                                     // block-diagonal, not causal
    return this.proj.forward(reshape(o, [N, C]));
  }
}

/** fc1 → GELU → fc2, both with bias. */
export class VisionMLP extends Module {
  readonly fc1: Linear;
  readonly fc2: Linear;
  private readonly act: Activation;

  constructor(v: VisionConfig, dtype: FloatDType) {
    super();
    this.fc1 = this.module('fc1', new Linear(v.hiddenSize, visionMlpSize(v), { dtype }));
    this.fc2 = this.module('fc2', new Linear(visionMlpSize(v), v.hiddenSize, { dtype }));
    this.act = activationKind(v.hiddenAct);
  }

  forward(x: Tensor): Tensor {
    return mlpForward(this.fc1, this.fc2, x, this.act);
  }
}

/** Pre-LN block: x + Attn(LN1(x)), then x + MLP(LN2(x)). */
export class VisionBlock extends Module {
  readonly norm1: LayerNorm;
  readonly attn: VisionAttention;
  readonly norm2: LayerNorm;
  readonly mlp: VisionMLP;

  constructor(v: VisionConfig, dtype: FloatDType) {
    super();
    this.norm1 = this.module('norm1', new LayerNorm(v.hiddenSize, v.layerNormEps, { dtype }));
    this.attn = this.module('attn', new VisionAttention(v, dtype));
    this.norm2 = this.module('norm2', new LayerNorm(v.hiddenSize, v.layerNormEps, { dtype }));
    this.mlp = this.module('mlp', new VisionMLP(v, dtype));
  }

  forward(x: Tensor, rope: RopeTable, cuSeqlens: readonly number[]): Tensor {
    const h = add(x, this.attn.forward(this.norm1.forward(x), rope, cuSeqlens));
    return add(h, this.mlp.forward(this.norm2.forward(h)));
  }
}

export class SeedViT extends Module {
  /** Linear 588 → C with bias: a 14×14 stride-14 convolution on flattened (C, y, x) patches. */
  readonly patchEmbed: Linear;
  readonly blocks: VisionBlock[];
  readonly norm: LayerNorm;

  constructor(readonly config: VisionConfig, readonly dtype: FloatDType = 'float32') {
    super();
    this.patchEmbed = this.module('patch_embed', new Linear(patchDim(config), config.hiddenSize, { dtype }));
    this.blocks = this.modules('blocks', Array.from({ length: config.numLayers }, () => new VisionBlock(config, dtype)));
    this.norm = this.module('norm', new LayerNorm(config.hiddenSize, config.layerNormEps, { dtype }));
  }

  /** 2D RoPE tables [N, headDim/2] for the patches of `grids`, in merge-window order. */
  ropeTable(grids: readonly ImageGrid[]): RopeTable {
    const v = this.config;
    return rope2dTable(grids, { headDim: visionHeadDim(v), theta: v.ropeTheta, mergeSize: v.mergeSize, dtype: this.dtype });
  }

  /** pixelValues [N, 3·14·14] (images packed, merge-window order) → features [N, C]. */
  forward(pixelValues: Tensor, grids: readonly ImageGrid[]): Tensor {
    const v = this.config;
    if (pixelValues.ndim !== 2 || pixelValues.shape[1] !== patchDim(v)) {
      throw new RangeError(`Seed-ViT: pixelValues must be [patches, ${patchDim(v)}], got [${pixelValues.shape}]`);
    }
    const cuSeqlens = imageSegments(v, grids, pixelValues.shape[0]);
    const rope = this.ropeTable(grids);
    let x = this.patchEmbed.forward(pixelValues);                                   // [N, C]
    for (const block of this.blocks) {
      // Each block in its own scope: its temporaries go now (the autograd graph keeps what it saved).
      const next = tidy(() => block.forward(x, rope, cuSeqlens));
      x.dispose();
      x = next;
    }
    rope.cos.dispose();
    rope.sin.dispose();
    return this.norm.forward(x);
  }
}
