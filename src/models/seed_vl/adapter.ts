/**
 * The vision → language adapter (spec §2.4): 2×2 average pooling over each
 * image's patch grid (four ViT tokens → one LLM token, i.e. one LLM token per
 * 28×28 pixels), then a two-layer MLP into the LLM width:
 * Linear(C_vit → H_a) → act → Linear(H_a → D_llm), both with bias.
 *
 * Seed pools (mean) where the Qwen/Kimi mergers concatenate the 2×2 neighbours,
 * so the adapter input is C_vit wide, not 4·C_vit.
 */
import { Module, Linear, activationKind, mlpForward } from '../../nn/index.ts';
import type { Tensor, Activation } from '../../tensor/index.ts';
import { avgPool2x2 } from '../../tensor/ops/pool.ts';
import type { AdapterConfig } from './config.ts';
import type { FloatDType, ImageGrid } from './vision.ts';

export class Adapter extends Module {
  readonly fc1: Linear;
  readonly fc2: Linear;
  private readonly act: Activation;

  constructor(readonly config: AdapterConfig, visionWidth: number, llmWidth: number, dtype: FloatDType = 'float32') {
    super();
    this.fc1 = this.module('fc1', new Linear(visionWidth, config.hiddenSize, { dtype }));
    this.fc2 = this.module('fc2', new Linear(config.hiddenSize, llmWidth, { dtype }));
    this.act = activationKind(config.hiddenAct);
  }

  /** features [N, C_vit] in merge-window order → LLM tokens [N/4, D_llm], raster order per image. */
  forward(features: Tensor, grids: readonly ImageGrid[]): Tensor {
    const pooled = avgPool2x2(features, grids);                     // [N/4, C_vit]
    return mlpForward(this.fc1, this.fc2, pooled, this.act);       // [N/4, D_llm]
  }
}
