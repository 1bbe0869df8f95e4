/** config.json spellings (Hub originals, transformers 5's re-save) and config errors that name the file and key. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseQwenConfig, isMoeLayer, ConfigError } from '../../../src/models/qwen_vl/config.ts';
import { FAMILIES, goldenAvailable, modelDir, throwsNaming } from './_helpers.ts';

const skip = goldenAvailable ? false : 'shared/golden is not present';
const read = (family: string, file: string) => JSON.parse(readFileSync(join(modelDir(family), file), 'utf8'));

test('both config spellings (rope_scaling vs rope_parameters, num_experts vs num_local_experts) parse the same', { skip }, () => {
  for (const f of FAMILIES) {
    const a = parseQwenConfig(read(f, 'config.json'), 'config.json');
    const b = parseQwenConfig(read(f, 'config.transformers-5.18.json'), 'config.transformers-5.18.json');
    assert.deepEqual(a, b, f);
  }
});

test('the golden configs read as the README describes them', { skip }, () => {
  const q2 = parseQwenConfig(read('qwen2_vl', 'config.json'));
  assert.equal(q2.family, 'qwen2_vl');
  assert.deepEqual(q2.text.mropeSection, [2, 3, 3]);
  assert.equal(q2.text.tieWordEmbeddings, true);
  assert.equal(q2.text.attentionBias, true);
  assert.equal(q2.vision.hiddenSize, 32);
  assert.equal(q2.vision.intermediateSize, 128);
  assert.equal(q2.vision.hiddenAct, 'quick_gelu');
  assert.equal(q2.vision.outHiddenSize, 64);
  const q25 = parseQwenConfig(read('qwen2_5_vl', 'config.json'));
  assert.equal(q25.vision.norm, 'rmsnorm');
  assert.equal(q25.vision.mlp, 'gated');
  assert.equal(q25.vision.windowSize, 112);
  assert.deepEqual(q25.vision.fullattBlockIndexes, [1]);
  assert.equal(q25.vision.tokensPerSecond, 2);
  assert.equal(q25.text.tieWordEmbeddings, false);
  const q3 = parseQwenConfig(read('qwen3_vl_moe', 'config.json'));
  assert.equal(q3.text.mropeInterleaved, true);
  assert.equal(q3.text.ropeTheta, 5e6);
  assert.equal(q3.text.qkNorm, true);
  assert.equal(q3.text.attentionBias, false);
  assert.deepEqual(q3.text.moe, { numExperts: 8, topK: 2, intermediateSize: 48, normTopkProb: true, decoderSparseStep: 1, mlpOnlyLayers: [] });
  assert.equal(q3.vision.numPositionEmbeddings, 2304);
  assert.deepEqual(q3.vision.deepstackVisualIndexes, [0, 1]);
  assert.equal(q3.vision.patchBias, true);
  // The 5.18 file's text_config says tied; the top-level key (untied, lm_head present) wins.
  assert.equal(parseQwenConfig(read('qwen3_vl_moe', 'config.transformers-5.18.json')).text.tieWordEmbeddings, false);
  assert.ok(isMoeLayer(q3.text, 0) && isMoeLayer(q3.text, 1));
  assert.ok(!isMoeLayer({ ...q3.text, moe: { ...q3.text.moe!, mlpOnlyLayers: [1] } }, 1));
});

test('the transformers 4.5x spelling rope_scaling {type: default, rope_type, mrope_section} is accepted', { skip }, () => {
  const j = read('qwen2_5_vl', 'config.json');
  j.rope_scaling = { type: 'default', rope_type: 'default', mrope_section: [2, 3, 3] };
  assert.deepEqual(parseQwenConfig(j).text.mropeSection, [2, 3, 3]);
  // Newer re-saves nest the text fields under text_config.
  const nested = read('qwen2_5_vl', 'config.json');
  const text: Record<string, unknown> = {};
  for (const k of ['hidden_size', 'num_hidden_layers', 'num_attention_heads', 'num_key_value_heads', 'vocab_size', 'rope_scaling', 'rope_theta', 'intermediate_size']) {
    text[k] = nested[k];
    delete nested[k];
  }
  nested.text_config = text;
  assert.deepEqual(parseQwenConfig(nested), parseQwenConfig(read('qwen2_5_vl', 'config.json')));
});

test('unknown model types are refused with the supported list; bad keys are named with the file', { skip }, () => {
  const j = read('qwen2_vl', 'config.json');
  throwsNaming(() => parseQwenConfig({ ...j, model_type: 'llava', architectures: ['LlavaForConditionalGeneration'] }, '/m/config.json'),
    '/m/config.json', 'llava', 'qwen2_vl', 'qwen2_5_vl', 'qwen3_vl', 'qwen3_vl_moe');
  throwsNaming(() => parseQwenConfig({ ...j, rope_scaling: { type: 'mrope', mrope_section: [2, 3] } }, '/m/config.json'), '/m/config.json', 'mrope_section');
  throwsNaming(() => parseQwenConfig({ ...j, rope_scaling: { type: 'mrope', mrope_section: [2, 3, 4] } }), 'mrope_section', 'head_dim/2 = 8');
  throwsNaming(() => parseQwenConfig({ ...j, num_attention_heads: 3 }), 'num_attention_heads');
  throwsNaming(() => parseQwenConfig({ ...j, hidden_size: 'big' }), 'hidden_size', 'integer');
  throwsNaming(() => parseQwenConfig({ ...j, vision_config: undefined }), 'vision_config', 'missing');
  throwsNaming(() => parseQwenConfig({ ...j, rope_scaling: undefined }), 'rope_scaling');
  const q3 = read('qwen3_vl_moe', 'config.json');
  throwsNaming(() => parseQwenConfig({ ...q3, text_config: { ...q3.text_config, num_experts: undefined } }), 'num_local_experts');
  throwsNaming(() => parseQwenConfig({ ...q3, vision_config: { ...q3.vision_config, deepstack_visual_indexes: [0, 7] } }), 'vision block index 7');
  assert.throws(() => parseQwenConfig([]), ConfigError);
  // architectures alone identify the family.
  assert.equal(parseQwenConfig({ ...j, model_type: undefined }).family, 'qwen2_vl');
});
