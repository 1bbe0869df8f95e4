/**
 * The Qwen vision towers (open-models.md §4.1, §5, §6.1), one class for the
 * three generations:
 *
 *   patches [N, 3·T·P·P] ─ Conv3d as Linear ─► [N, C] (+ learned pos-embeds, Qwen3)
 *     ─► depth × pre-norm blocks (2-D RoPE, attention per frame or per window)
 *     ─► merger: concat each 2×2 group (4 consecutive rows) → MLP → [N/4, D]
 *   Qwen3 also taps blocks `deepstack_visual_indexes` through their own mergers.
 *
 * Attention is Seed-ViT's `VisionAttention` (fused qkv, half-split 2-D RoPE,
 * block-diagonal `cuSeqlens`). Qwen2.5-VL reorders the patches into windows
 * after the patch embedding, runs window attention in all blocks except
 * `fullatt_block_indexes`, and restores the natural order after the merger.
 */
import { Module, Linear, LayerNorm, RMSNorm, activationKind, mlpForward } from '../../nn/index.ts';
import type { Activation } from '../../tensor/ops/activation.ts';
import { VisionAttention } from '../seed_vl/vision.ts';
import { Tensor, tidy, tensor, embedding, indexSelect, reshape } from '../../tensor/index.ts';
import { add, mul } from '../../tensor/ops/elementwise.ts';
import { swiglu } from '../../tensor/ops/activation.ts';
import { linearSwiGLU } from '../../tensor/ops/linear_fused.ts';
import { needsGrad } from '../../tensor/autograd.ts';
import { rope2dTable, rope2dFreqs, type RopeTable } from '../../tensor/ops/rope.ts';
import { type QwenVisionConfig, visionHeadDim, visionPatchDim } from './config.ts';
import { checkGrids, frameSegments, windowLayout, expandGroups, invertPermutation, bilinearTaps, type Grid3 } from './vision_layout.ts';

/** Receives intermediate tensors by name (golden comparisons); must not keep them. */
export type Trace = (name: string, t: Tensor) => void;

/** fc1 → act → fc2 (Qwen2-VL quick_gelu, Qwen3-VL gelu_tanh), biased. */
export class VisionFcMLP extends Module {
  private readonly act: Activation;
  constructor(readonly fc1: Linear, readonly fc2: Linear, act: string) {
    super();
    this.module('fc1', fc1);
    this.module('fc2', fc2);
    this.act = activationKind(act);
  }
  forward(x: Tensor): Tensor {
    return mlpForward(this.fc1, this.fc2, x, this.act);
  }
}

/** down(silu(gate(x)) ⊙ up(x)), all biased (Qwen2.5-VL). */
export class VisionGatedMLP extends Module {
  constructor(readonly gateProj: Linear, readonly upProj: Linear, readonly downProj: Linear, act: string) {
    super();
    if (act !== 'silu' && act !== 'swish') throw new RangeError(`Qwen2.5-VL vision MLP: activation '${act}' is not supported (only silu)`);
    this.module('gate_proj', gateProj);
    this.module('up_proj', upProj);
    this.module('down_proj', downProj);
  }
  forward(x: Tensor): Tensor {
    const g = this.gateProj, u = this.upProj;
    if (g.quantized || u.quantized || g.weight.dtype !== u.weight.dtype) return this.downProj.forward(swiglu(g.forward(x), u.forward(x)));
    // Fused gate/up + SwiGLU (linearSwiGLU): the two [tokens, intermediate] products never reach memory.
    const h = linearSwiGLU(x, g.weight, u.weight, g.bias, u.bias);
    const out = this.downProj.forward(h);
    if (!needsGrad(out)) h.dispose();  // no graph holds it
    return out;
  }
}

export type VisionNorm = LayerNorm | RMSNorm;

/** Pre-norm block: x + Attn(norm1(x)), then x + MLP(norm2(x)). */
export class QwenVisionBlock extends Module {
  constructor(readonly norm1: VisionNorm, readonly attn: VisionAttention, readonly norm2: VisionNorm, readonly mlp: VisionFcMLP | VisionGatedMLP) {
    super();
    this.module('norm1', norm1);
    this.module('attn', attn);
    this.module('norm2', norm2);
    this.module('mlp', mlp);
  }
  forward(x: Tensor, rope: RopeTable, cuSeqlens: readonly number[]): Tensor {
    const h = add(x, this.attn.forward(this.norm1.forward(x), rope, cuSeqlens));
    return add(h, this.mlp.forward(this.norm2.forward(h)));
  }
}

/**
 * Concat-then-MLP merger: each 2×2 group (four consecutive rows, merge-window
 * order) becomes one row of 4C → fc1 → GELU (erf) → fc2. The norm runs before
 * the regroup on C channels (main mergers) or after it on 4C (Qwen3 deepstack).
 */
export class PatchMerger extends Module {
  readonly unit: number;
  constructor(readonly norm: VisionNorm, readonly fc1: Linear, readonly fc2: Linear, readonly normAfterRegroup: boolean, mergeSize: number) {
    super();
    this.module('norm', norm);
    this.module('fc1', fc1);
    this.module('fc2', fc2);
    this.unit = mergeSize * mergeSize;
  }
  /** x [N, C] → [N/unit, D]. */
  forward(x: Tensor): Tensor {
    const [N, C] = x.shape;
    const grouped = this.normAfterRegroup
      ? this.norm.forward(reshape(x, [N / this.unit, this.unit * C]))
      : reshape(this.norm.forward(x), [N / this.unit, this.unit * C]);
    return mlpForward(this.fc1, this.fc2, grouped, 'gelu');
  }
}

export interface VisionOutput {
  /** LLM tokens [N/4, D], natural order (raster over each frame's merged grid). */
  embeds: Tensor;
  /** Qwen3 deepstack features, one [N/4, D] per deepstack index. */
  deepstack: Tensor[];
}

export class QwenVisionTower extends Module {
  constructor(
    readonly config: QwenVisionConfig,
    readonly patchEmbed: Linear,
    readonly posEmbed: Tensor | null,
    readonly blocks: QwenVisionBlock[],
    readonly merger: PatchMerger,
    readonly deepstackMergers: PatchMerger[],
  ) {
    super();
    this.module('patch_embed', patchEmbed);
    if (posEmbed) this.param('pos_embed.weight', posEmbed, false);
    this.modules('blocks', blocks);
    this.module('merger', merger);
    if (deepstackMergers.length) this.modules('deepstack_mergers', deepstackMergers);
  }

  /** 2-D RoPE tables [N, headDim/2] in merge-window order, frames repeated t times. */
  ropeTable(grids: readonly Grid3[]): RopeTable {
    const v = this.config;
    return rope2dTable(grids, { headDim: visionHeadDim(v), theta: v.ropeTheta, mergeSize: v.mergeSize });
  }

  /** Learned position embeddings [N, C] bilinearly resampled to the grids (Qwen3). */
  positionEmbeddings(grids: readonly Grid3[]): Tensor {
    const table = this.posEmbed!;
    const side = Math.round(Math.sqrt(table.shape[0]));
    const taps = bilinearTaps(grids, side, this.config.mergeSize);
    return tidy(() => {
      let acc: Tensor | null = null;
      for (let k = 0; k < 4; k++) {
        const n = taps.indices[k].length;
        const term = mul(embedding(table, taps.indices[k]), tensor(taps.weights[k], [n, 1]));
        acc = acc ? add(acc, term) : term; // ((t0 + t1) + t2) + t3, as the reference sums
      }
      return acc!;
    });
  }

  /** pixelValues [N, 3·T·P·P] (images or video frames packed, merge-window order) → LLM tokens. */
  forward(pixelValues: Tensor, grids: readonly Grid3[], trace?: Trace): VisionOutput {
    const v = this.config;
    if (pixelValues.ndim !== 2 || pixelValues.shape[1] !== visionPatchDim(v)) {
      throw new RangeError(`Qwen vision: pixel values must be [patches, ${visionPatchDim(v)}], got [${pixelValues.shape}]`);
    }
    checkGrids(grids, v.mergeSize, pixelValues.shape[0], 'vision input');
    const unit = v.mergeSize * v.mergeSize;
    const cuFrames = frameSegments(grids);
    const window = v.windowSize > 0 ? windowLayout(grids, v.windowSize, v.mergeSize, v.patchSize) : null;
    // Embedding, position tables and (Qwen2.5) the window reordering, in one scope.
    let { x, rope } = tidy(() => {
      let x = this.patchEmbed.forward(pixelValues);                                 // [N, C]
      trace?.('patch_embed', x);
      if (this.posEmbed) {
        const pe = this.positionEmbeddings(grids);
        trace?.('pos_embeds', pe);
        x = add(x, pe);
      }
      let rope = this.ropeTable(grids);
      if (trace) trace('rotary_freqs', rope2dFreqs(grids, { headDim: visionHeadDim(v), theta: v.ropeTheta, mergeSize: v.mergeSize }));
      if (window) {
        const rows = expandGroups(window.windowIndex, unit);                        // window order, in patch rows
        x = indexSelect(x, 0, rows);
        rope = { cos: indexSelect(rope.cos, 0, rows), sin: indexSelect(rope.sin, 0, rows) };
      }
      return { x, rope };
    });
    const deepstack: Tensor[] = [];
    try {
      this.blocks.forEach((block, i) => {
        const full = !window || v.fullattBlockIndexes.includes(i);
        // Each block in its own scope, so its temporaries go at once.
        const next = tidy(() => block.forward(x, rope, full ? cuFrames : window.cuWindowSeqlens));
        x.dispose();
        x = next;
        trace?.(`blocks.${i}.out`, x);
        const k = v.deepstackVisualIndexes.indexOf(i);
        if (k >= 0) deepstack.push(tidy(() => this.deepstackMergers[k].forward(x)));
      });
      const embeds = tidy(() => {
        const merged = this.merger.forward(x);                                      // [N/4, D]
        return window ? indexSelect(merged, 0, invertPermutation(window.windowIndex)) : merged; // natural order
      });
      return { embeds, deepstack };
    } catch (e) {
      for (const t of deepstack) t.dispose();
      throw e;
    } finally {
      x.dispose();
      rope.cos.dispose();
      rope.sin.dispose();
    }
  }
}
