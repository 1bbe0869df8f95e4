/**
 * End-to-end gradient check: the full training loss (next-token cross-entropy
 * + load-balancing + z-loss) of a tiny float64 model with two images and two
 * packed samples, against central differences on a sample of coordinates of
 * parameters from every component.
 */
import { test } from 'node:test';
import { gradcheck } from '../../helpers/gradcheck.ts';
import { type Tensor, noGrad, tidy } from '../../../src/tensor/index.ts';
import { nextTokenLabels } from '../../../src/models/seed_vl/inputs.ts';
import type { SeedVLConfig } from '../../../src/models/seed_vl/config.ts';
import { tinyConfig, tinySigmoidConfig, buildModel, randomImages, sequenceWithImages } from './_helpers.ts';

const PROBED = [
  'vision.patch_embed.weight',
  'vision.blocks.0.attn.qkv.weight',
  'vision.blocks.0.attn.qkv.bias',
  'vision.blocks.1.mlp.fc2.weight',
  'vision.blocks.1.norm1.weight',
  'vision.norm.bias',
  'adapter.fc1.weight',
  'adapter.fc2.bias',
  'language.embed_tokens.weight',
  'language.layers.0.mlp.gate_proj.weight',
  'language.layers.1.self_attn.q_proj.weight',
  'language.layers.1.self_attn.k_proj.bias',
  'language.layers.1.self_attn.o_proj.weight',
  'language.layers.2.mlp.gate.weight',
  'language.layers.2.mlp.experts.E.down_proj.weight', // E: an expert this batch routes tokens to
  'language.layers.3.mlp.shared_experts.up_proj.weight',
  'language.layers.3.post_attention_layernorm.weight',
  'language.norm.weight',
  'language.lm_head.weight',
];

function check(cfg: SeedVLConfig): void {
  const m = buildModel(cfg, 3, 'float64');
  const ga = { h: 4, w: 4 };
  const gb = { h: 2, w: 4 };
  const images = randomImages(cfg, [ga, gb], 8, 'float64');
  const idsA = sequenceWithImages(cfg, [ga], 3, 31);
  const idsB = sequenceWithImages(cfg, [gb], 2, 32);
  const ids = Int32Array.from([...idsA, ...idsB]);
  const cuSeqlens = [0, idsA.length, ids.length];
  const labels = nextTokenLabels(ids, cuSeqlens);
  const inputs = { inputIds: ids, cuSeqlens, labels, images };
  const counts = noGrad(() => tidy(() => m.forward(inputs).expertCounts))[2 - cfg.language.moe!.firstKDenseReplace];
  const busiest = counts.indexOf(Math.max(...counts));
  const state = m.stateDict();
  const params: Tensor[] = PROBED.map((p) => p.replace('.E.', `.${busiest}.`)).map((n) => {
    if (!state[n]) throw new Error(`no parameter ${n}`);
    return state[n];
  });
  gradcheck(() => m.forward(inputs).loss!, params, { maxProbes: 6, eps: 1e-6, atol: 1e-7, rtol: 1e-4 });
  images.pixelValues.dispose();
  m.dispose();
}

test('gradient check, softmax router (finite differences on sampled parameters)', () => check(tinyConfig()));

test('gradient check, sigmoid group-limited router', () => check(tinySigmoidConfig()));
