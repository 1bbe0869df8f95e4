/**
 * Loading Hub directories: what is kept in bf16, what is refused (missing
 * files, shards that disagree with the index, unknown model types, tensors
 * the config does not describe, tokenizers without the special tokens), each
 * with an error naming the file and the key.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync, rmSync, renameSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { loadQwenModel } from '../../../src/models/qwen_vl/load.ts';
import { loadModelDir, detectModelDir, SUPPORTED_MODELS } from '../../../src/models/registry.ts';
import { openSafetensors, saveSafetensors } from '../../../src/io/safetensors.ts';
import { copyModel, goldenAvailable, modelDir, throwsNaming, rejectsNaming, QWEN_TOKENIZER } from './_helpers.ts';

const skip = goldenAvailable ? false : 'shared/golden is not present';

test('weights stay bf16 (zero-copy views of the mapped file); only norms and biases become f32 copies', { skip }, () => {
  for (const family of ['qwen2_5_vl', 'qwen3_vl_moe']) {
    const { model } = loadQwenModel(modelDir(family));
    const sd = model.stateDict();
    let bf16 = 0, f32 = 0, mapped = 0;
    for (const [name, t] of Object.entries(sd)) {
      if (t.dtype === 'bfloat16') {
        bf16 += t.size;
        if (t.storage.ownership === 'external') mapped += t.size;
      } else {
        assert.equal(t.dtype, 'float32', name);
        assert.equal(t.ndim, 1, `${name} is an f32 copy but not a vector`);
        f32 += t.size;
      }
    }
    assert.equal(mapped, bf16, `${family}: every bf16 weight is a view of the file`);
    assert.ok(f32 < 0.01 * bf16, `${family}: f32 copies ${f32} vs bf16 ${bf16}`);
    model.dispose();
  }
});

test('the Qwen3-MoE experts are computed sparsely: only experts some token chose run', { skip }, () => {
  const { model } = loadQwenModel(modelDir('qwen3_vl_moe'));
  const moe = model.language.layers[0].mlp as import('../../../src/nn/moe.ts').MoE;
  const calls: number[] = [];
  moe.experts.forEach((ex, e) => {
    const f = ex.forward.bind(ex);
    ex.forward = (x) => (calls.push(e), f(x));
  });
  const out = model.forward({ inputIds: [151644, 872, 198] });
  out.hidden.dispose();
  const routed = new Set(calls);
  assert.equal(calls.length, routed.size, 'each chosen expert runs once');
  assert.ok(routed.size <= 3 * 2 && routed.size < moe.experts.length, `ran ${routed.size} of ${moe.experts.length} experts for 3 tokens × top-2`);
  model.dispose();
});

test('experts as contiguous copies compute what the zero-copy views compute', { skip }, () => {
  const ids = [151644, 872, 198, 3838, 374, 279, 6672, 30];
  const outs = (['view', 'copy'] as const).map((experts) => {
    const { model } = loadQwenModel(modelDir('qwen3_vl_moe'), { experts });
    const w = (model.language.layers[0].mlp as import('../../../src/nn/moe.ts').MoE).experts[0].gateProj.weight;
    assert.equal(w.isContiguous, experts === 'copy');
    const { hidden } = model.forward({ inputIds: ids });
    const v = hidden.toArray() as number[];
    hidden.dispose();
    model.dispose();
    return v;
  });
  const diff = Math.max(...outs[0].map((x, i) => Math.abs(x - outs[1][i])));
  // Few tokens per expert run as GEMVs: the Hub layout through the exact "axpy" kernel, the copy
  // through the vdpbf16ps "dot" kernel (activations kept to ~16 bits), hence not bit-identical.
  assert.ok(diff < 1e-4, `max abs diff ${diff}`);
});

test('a missing config.json, weights file or shard is an error naming the file', { skip }, () => {
  const d1 = copyModel('qwen2_vl');
  rmSync(join(d1, 'config.json'));
  throwsNaming(() => loadQwenModel(d1), join(d1, 'config.json'), 'not found');
  const d2 = copyModel('qwen2_vl');
  rmSync(join(d2, 'model.safetensors'));
  throwsNaming(() => loadQwenModel(d2), 'model.safetensors', 'model.safetensors.index.json');
  const d3 = copyModel('qwen2_5_vl');
  rmSync(join(d3, 'model-00002-of-00002.safetensors'));
  throwsNaming(() => loadQwenModel(d3), 'model-00002-of-00002.safetensors');
});

test('shards whose index disagrees with the files are refused, naming the index and tensor', { skip }, () => {
  const d = copyModel('qwen2_5_vl');
  const indexFile = join(d, 'model.safetensors.index.json');
  const index = JSON.parse(readFileSync(indexFile, 'utf8'));
  // The index claims lm_head lives in the other shard.
  index.weight_map['lm_head.weight'] = 'model-00002-of-00002.safetensors';
  writeFileSync(indexFile, JSON.stringify(index));
  throwsNaming(() => loadQwenModel(d), 'model.safetensors.index.json', 'lm_head.weight');
  // A tensor in a shard that the index does not list.
  const d2 = copyModel('qwen2_5_vl');
  const f2 = join(d2, 'model.safetensors.index.json');
  const i2 = JSON.parse(readFileSync(f2, 'utf8'));
  delete i2.weight_map['model.norm.weight'];
  writeFileSync(f2, JSON.stringify(i2));
  throwsNaming(() => loadQwenModel(d2), 'model.norm.weight');
});

test('weights that do not match config.json are named with their file', { skip }, () => {
  // A tensor missing from the file.
  const d = copyModel('qwen3_vl_moe');
  const file = join(d, 'model.safetensors');
  const st = openSafetensors(file);
  const keep: Record<string, import('../../../src/tensor/index.ts').Tensor> = {};
  for (const n of st.names()) if (n !== 'model.visual.merger.linear_fc2.bias') keep[n] = st.get(n, { copy: true });
  st.close();
  saveSafetensors(file, keep);
  throwsNaming(() => loadQwenModel(d), "'vision.merger.fc2.bias'", 'missing');
  // A config that says more layers than the file holds.
  const d2 = copyModel('qwen2_vl');
  const cfgFile = join(d2, 'config.json');
  const cfg = JSON.parse(readFileSync(cfgFile, 'utf8'));
  cfg.num_hidden_layers = 3;
  writeFileSync(cfgFile, JSON.stringify(cfg));
  throwsNaming(() => loadQwenModel(d2), 'language.layers.2');
  // A config with a wider MLP than the weights.
  cfg.num_hidden_layers = 2;
  cfg.intermediate_size = 256;
  writeFileSync(cfgFile, JSON.stringify(cfg));
  throwsNaming(() => loadQwenModel(d2), 'model.safetensors', 'model.layers.0.mlp.gate_proj.weight', '[128,64]', '[256,64]');
  for (const t of Object.values(keep)) t.dispose();
});

test('unknown architectures are refused with the supported list', { skip }, async () => {
  const d = copyModel('qwen2_vl');
  const cfgFile = join(d, 'config.json');
  writeFileSync(cfgFile, JSON.stringify({ ...JSON.parse(readFileSync(cfgFile, 'utf8')), model_type: 'llava', architectures: ['LlavaForConditionalGeneration'] }));
  throwsNaming(() => detectModelDir(d), cfgFile, 'llava', ...SUPPORTED_MODELS.map((m) => m.modelType));
  await rejectsNaming(() => loadModelDir(d), 'not supported', 'qwen3_vl_moe', 'seed_vl');
  assert.deepEqual(detectModelDir(modelDir('qwen3_vl_moe')), { kind: 'qwen_vl', family: 'qwen3_vl_moe' });
});

test('running needs a tokenizer with the Qwen special tokens', { skip }, async () => {
  const d = copyModel('qwen2_vl');
  await rejectsNaming(() => loadModelDir(d), join(d, 'tokenizer.json'), 'not found');
  // A tokenizer without <|image_pad|>.
  const tok = JSON.parse(readFileSync(QWEN_TOKENIZER, 'utf8'));
  tok.added_tokens = tok.added_tokens.filter((t: { content: string }) => t.content !== '<|image_pad|>');
  delete tok.model.vocab['<|image_pad|>'];
  writeFileSync(join(d, 'tokenizer.json'), JSON.stringify(tok));
  await rejectsNaming(() => loadModelDir(d), join(d, 'tokenizer.json'), '<|image_pad|>');
  // A config whose image token id disagrees with the tokenizer.
  const d2 = copyModel('qwen2_vl', { tokenizer: true });
  const cfgFile = join(d2, 'config.json');
  writeFileSync(cfgFile, JSON.stringify({ ...JSON.parse(readFileSync(cfgFile, 'utf8')), image_token_id: 151654 }));
  await rejectsNaming(() => loadModelDir(d2), 'tokenizer.json', '<|image_pad|>', '151655', '151654');
});

test('a directory that is not there', async () => {
  throwsNaming(() => detectModelDir('/nonexistent/model'), '/nonexistent/model', 'not found');
  assert.ok(!existsSync('/nonexistent/model'));
  void renameSync;
});
