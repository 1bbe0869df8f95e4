/** Hub names → our names, and the fused-expert views (zero-copy, correct values). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { sanitizeNames } from '../../../src/models/qwen_vl/sanitize.ts';
import { WeightStore, type TensorSource } from '../../../src/models/qwen_vl/weights.ts';
import { tensor, linear, type Tensor } from '../../../src/tensor/index.ts';
import { rng } from '../../helpers/gradcheck.ts';

test('both Hub layouts map onto one tree', () => {
  const old = ['visual.patch_embed.proj.weight', 'visual.blocks.0.attn.qkv.weight', 'visual.merger.ln_q.weight', 'visual.merger.mlp.0.bias', 'visual.merger.mlp.2.weight',
    'model.embed_tokens.weight', 'model.layers.3.self_attn.q_proj.bias', 'model.norm.weight', 'lm_head.weight'];
  const neu = ['model.visual.patch_embed.proj.bias', 'model.visual.pos_embed.weight', 'model.visual.blocks.1.mlp.linear_fc2.weight', 'model.visual.merger.linear_fc1.weight',
    'model.visual.deepstack_merger_list.2.norm.weight', 'model.visual.deepstack_merger_list.0.linear_fc2.bias', 'model.language_model.layers.0.self_attn.k_norm.weight',
    'model.language_model.layers.1.mlp.gate.weight'];
  const { refs, unknown } = sanitizeNames([...old, ...neu]);
  assert.deepEqual(unknown, []);
  const names = [...refs.keys()];
  assert.deepEqual(names, [
    'vision.patch_embed.weight', 'vision.blocks.0.attn.qkv.weight', 'vision.merger.norm.weight', 'vision.merger.fc1.bias', 'vision.merger.fc2.weight',
    'language.embed_tokens.weight', 'language.layers.3.self_attn.q_proj.bias', 'language.norm.weight', 'language.lm_head.weight',
    'vision.patch_embed.bias', 'vision.pos_embed.weight', 'vision.blocks.1.mlp.fc2.weight', 'vision.merger.fc1.weight',
    'vision.deepstack_mergers.2.norm.weight', 'vision.deepstack_mergers.0.fc2.bias', 'language.layers.0.self_attn.k_norm.weight',
    'language.layers.1.mlp.gate.weight',
  ]);
  assert.equal(refs.get('vision.patch_embed.weight')!.kind, 'conv');
});

test('names of no known layout are reported, and two names for one tensor are an error', () => {
  assert.deepEqual(sanitizeNames(['model.vision_tower.x', 'foo.bar', 'model.mm_projector.weight']).unknown, ['model.vision_tower.x', 'foo.bar', 'model.mm_projector.weight']);
  assert.throws(() => sanitizeNames(['model.embed_tokens.weight', 'model.language_model.embed_tokens.weight']), /both map to 'language.embed_tokens.weight'/);
  // Fused experts need the expert count.
  assert.deepEqual(sanitizeNames(['model.language_model.layers.0.mlp.experts.down_proj']).unknown, ['model.language_model.layers.0.mlp.experts.down_proj']);
});

function memorySource(tensors: Record<string, Tensor>): TensorSource {
  return { dir: '/mem', names: () => Object.keys(tensors), get: (n) => tensors[n].viewAs(tensors[n].shape, tensors[n].strides), fileOf: () => '/mem/model.safetensors' };
}

test('fused experts become per-expert Linear weights: transposed views of the stored tensor, no copy', () => {
  const E = 3, H = 5, I = 4;
  const r = rng(7);
  const gu = Array.from({ length: E * H * 2 * I }, () => r() * 2 - 1);
  const dn = Array.from({ length: E * I * H }, () => r() * 2 - 1);
  const gate_up = tensor(gu, [E, H, 2 * I], 'bfloat16');
  const down = tensor(dn, [E, I, H], 'bfloat16');
  const store = new WeightStore(memorySource({
    'model.language_model.layers.0.mlp.experts.gate_up_proj': gate_up,
    'model.language_model.layers.0.mlp.experts.down_proj': down,
  }), { numExperts: E });
  const x = tensor(Array.from({ length: 2 * H }, () => r()), [2, H]);
  const xs = x.toArray() as number[];
  const g = (e: number, h: number, j: number) => (gate_up.toArray() as number[])[(e * H + h) * 2 * I + j];
  const d = (e: number, i: number, h: number) => (down.toArray() as number[])[(e * I + i) * H + h];
  for (let e = 0; e < E; e++) {
    const wg = store.matrix(`language.layers.0.mlp.experts.${e}.gate_proj.weight`, [I, H]);
    const wu = store.matrix(`language.layers.0.mlp.experts.${e}.up_proj.weight`, [I, H]);
    const wd = store.matrix(`language.layers.0.mlp.experts.${e}.down_proj.weight`, [H, I]);
    for (const w of [wg, wu, wd]) {
      assert.equal(w.dtype, 'bfloat16');
      assert.ok(!w.isContiguous, 'a strided view');
    }
    assert.equal(wg.storage, gate_up.storage, 'shares the stored tensor');
    assert.equal(wd.storage, down.storage);
    // x @ W[e][:, :I] (gate), x @ W[e][:, I:] (up), y @ D[e] (down), as the Hub layout is used.
    const yg = linear(x, wg).toArray() as number[], yu = linear(x, wu).toArray() as number[];
    const z = tensor(Array.from({ length: 2 * I }, (_, k) => k / 7 - 0.5), [2, I]);
    const yd = linear(z, wd).toArray() as number[];
    for (let t = 0; t < 2; t++) {
      for (let j = 0; j < I; j++) {
        let sg = 0, su = 0;
        for (let h = 0; h < H; h++) (sg += xs[t * H + h] * g(e, h, j)), (su += xs[t * H + h] * g(e, h, I + j));
        assert.ok(Math.abs(yg[t * I + j] - sg) < 1e-5 && Math.abs(yu[t * I + j] - su) < 1e-5, `expert ${e} gate/up`);
      }
      for (let h = 0; h < H; h++) {
        let s = 0;
        for (let i = 0; i < I; i++) s += (z.toArray() as number[])[t * I + i] * d(e, i, h);
        assert.ok(Math.abs(yd[t * H + h] - s) < 1e-5, `expert ${e} down`);
      }
    }
  }
  store.finish();
});

test('the weight store names the file and tensor for missing, misshapen and unused tensors', () => {
  const src = memorySource({ 'model.norm.weight': tensor([1, 2, 3], [3]), 'model.layers.0.mlp.gate_proj.weight': tensor([1, 2, 3, 4], [2, 2]) });
  const s = new WeightStore(src);
  assert.throws(() => s.vector('language.norm.weight', 4), /model\.safetensors: tensor 'model\.norm\.weight' has shape \[3\], config\.json implies \[4\]/);
  assert.throws(() => s.matrix('language.lm_head.weight', [8, 3]), /missing tensor for 'language\.lm_head\.weight'/);
  assert.throws(() => s.finish(), /tensor 'model\.layers\.0\.mlp\.gate_proj\.weight' is not used/);
  assert.throws(() => new WeightStore(memorySource({ 'vision_tower.x': tensor([1], [1]) })), /tensor 'vision_tower\.x' is not part of a Qwen-VL checkpoint/);
});
