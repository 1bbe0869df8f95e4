import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  parseConfig, configToJSON, configFromString, configToString, makeConfig, ConfigError, type SeedVLConfig,
} from '../../../src/models/seed_vl/config.ts';
import { preset, PRESET_NAMES } from '../../../src/models/seed_vl/presets.ts';
import {
  accountModel, visionParams, visionBlockParams, imageFlops, flopsPerToken, languageParams,
} from '../../../src/models/seed_vl/accounting.ts';
import { infoCommand } from '../../../src/cli/info.ts';

/** A mutable JSON copy of the tiny preset's config.json. */
function tinyJson(): any {
  return JSON.parse(JSON.stringify(configToJSON(preset('tiny'))));
}

function throwsNaming(fn: () => unknown, ...parts: string[]): void {
  assert.throws(fn, (e: Error) => {
    assert.ok(e instanceof ConfigError, `expected ConfigError, got ${e}`);
    for (const p of parts) assert.ok(e.message.includes(p), `message '${e.message}' should mention '${p}'`);
    return true;
  });
}

test('every preset round-trips through config.json unchanged', () => {
  for (const name of PRESET_NAMES) {
    const c = preset(name);
    assert.deepEqual(configFromString(configToString(c)), c, name);
    assert.deepEqual(makeConfig(c), c);
  }
});

test('defaults fill omitted keys; derived head_dim and adapter width', () => {
  const j = tinyJson();
  delete j.text_config.head_dim;
  delete j.adapter_config;
  delete j.vision_config.rope_theta;
  j.text_config.num_attention_heads = 4;
  const c = parseConfig(j);
  assert.equal(c.language.headDim, 128 / 4);
  assert.equal(c.adapter.hiddenSize, c.language.hiddenSize);
  assert.equal(c.vision.ropeTheta, 10000);
});

test('bad values are rejected with the key path and the value', () => {
  let j = tinyJson();
  j.vision_config.num_attention_heads = 3; // 64 % 3 != 0
  throwsNaming(() => parseConfig(j), 'vision_config.num_attention_heads', '3', 'divide');
  j = tinyJson();
  j.text_config.head_dim = null;
  j.text_config.num_attention_heads = 5; // 128 % 5
  throwsNaming(() => parseConfig(j), 'text_config.num_attention_heads', '5');
  j = tinyJson();
  j.text_config.num_key_value_heads = 3;
  throwsNaming(() => parseConfig(j), 'text_config.num_key_value_heads', '3');
  j = tinyJson();
  j.text_config.moe.num_experts_per_tok = 9;
  throwsNaming(() => parseConfig(j), 'text_config.moe.num_experts_per_tok', '9');
  j = tinyJson();
  j.text_config.moe.scoring_func = 'relu';
  throwsNaming(() => parseConfig(j), 'text_config.moe.scoring_func', '"relu"');
  j = tinyJson();
  j.text_config.moe.n_group = 2; // softmax family cannot group
  throwsNaming(() => parseConfig(j), 'text_config.moe.n_group');
  j = tinyJson();
  j.text_config.hidden_size = 'big';
  throwsNaming(() => parseConfig(j), 'text_config.hidden_size', '"big"');
  j = tinyJson();
  j.image_token_id = 1024; // == vocab
  throwsNaming(() => parseConfig(j), 'image_token_id', '1024');
  j = tinyJson();
  j.eoi_token_id = j.soi_token_id;
  throwsNaming(() => parseConfig(j), 'eoi_token_id', 'soi_token_id');
  j = tinyJson();
  j.vision_config.hiden_size = 12; // typo
  throwsNaming(() => parseConfig(j), 'vision_config.hiden_size');
  j = tinyJson();
  delete j.text_config.vocab_size;
  throwsNaming(() => parseConfig(j), 'text_config.vocab_size', 'missing');
  j = tinyJson();
  j.vision_config.layer_norm_eps = 0;
  throwsNaming(() => parseConfig(j), 'vision_config.layer_norm_eps');
  throwsNaming(() => configFromString('{not json'), 'not valid JSON');
  throwsNaming(() => preset('huge'), 'huge', 'tiny');
});

test('seed1.5-vl: Seed-ViT matches Table 1 and 532M ± 0.5%; LLM ~20B active', () => {
  const c = preset('seed1.5-vl');
  const v = c.vision;
  assert.deepEqual([v.patchSize, v.numLayers, v.hiddenSize, v.numHeads, v.hiddenSize / v.numHeads, v.mlpRatio], [14, 27, 1280, 20, 64, 4]);
  assert.equal(visionBlockParams(v), 19_677_440); // spec §2.2 derivation
  assert.equal(visionParams(v), 532_047_360);
  assert.ok(Math.abs(visionParams(v) / 532e6 - 1) < 0.005);
  const l = languageParams(c.language);
  assert.ok(l.active > 19e9 && l.active < 21e9, `active ${l.active}`);
  assert.ok(l.total > l.active * 5);
});

test('tiny and small presets are in their size ranges', () => {
  const t = accountModel(preset('tiny'));
  assert.ok(t.total_params >= 1e6 && t.total_params <= 5e6, `tiny ${t.total_params}`);
  const s = accountModel(preset('small'));
  assert.ok(s.total_params >= 20e6 && s.total_params <= 60e6, `small ${s.total_params}`);
});

test('FLOP formulas on hand-computed cases', () => {
  const c = preset('seed1.5-vl');
  const f = imageFlops(c, 28, 56); // 2×4 patches = 8 tokens, 2 LLM tokens
  const n = 8;
  const C = 1280;
  const expectVision = 2 * n * 588 * C + 27 * (2 * n * (4 * C * C + 2 * C * 5120) + 4 * n * n * C);
  assert.equal(f.vision, expectVision);
  assert.equal(f.llmTokens, 2);
  assert.equal(f.adapter, 2 * 2 * (C * 5120 + 5120 * 5120));
  assert.throws(() => imageFlops(c, 1024, 1024), /multiple of 28/);
  // Attention term grows linearly with context.
  const l = c.language;
  assert.equal(flopsPerToken(l, 100) - flopsPerToken(l, 0), 4 * l.numLayers * l.numHeads * l.headDim * 100);
  // Dense toy LLM by hand: 1 layer, no bias, untied head.
  const toy = makeConfig({ ...preset('tiny'), language: { ...preset('tiny').language, numLayers: 1, moe: null, attentionBias: false } });
  const L = toy.language;
  const attn = L.hiddenSize * (L.numHeads + 2 * L.numKvHeads) * L.headDim + L.numHeads * L.headDim * L.hiddenSize;
  assert.equal(flopsPerToken(L), 2 * (attn + 3 * L.hiddenSize * L.intermediateSize + L.vocabSize * L.hiddenSize));
});

async function captureStdout(fn: () => Promise<number>): Promise<{ code: number; out: string }> {
  const write = process.stdout.write.bind(process.stdout);
  const errWrite = process.stderr.write.bind(process.stderr);
  let out = '';
  (process.stdout as any).write = (s: string) => ((out += s), true);
  (process.stderr as any).write = () => true;
  try {
    const code = await fn();
    return { code, out };
  } finally {
    (process.stdout as any).write = write;
    (process.stderr as any).write = errWrite;
  }
}

test('seedvl info --json prints the accounting contract', async () => {
  const { code, out } = await captureStdout(() => infoCommand(['--preset', 'seed1.5-vl', '--json']));
  assert.equal(code, 0);
  const j = JSON.parse(out);
  assert.deepEqual(Object.keys(j), [
    'preset', 'vision_params', 'adapter_params', 'language_params_total', 'language_params_active',
    'total_params', 'active_params', 'flops_per_token', 'vision_flops_1024x1024',
  ]);
  assert.equal(j.preset, 'seed1.5-vl');
  assert.equal(j.vision_params, 532_047_360);
  for (const k of Object.keys(j).slice(1)) assert.equal(typeof j[k], 'number', k);
  for (const k of ['vision_params', 'adapter_params', 'language_params_total', 'language_params_active', 'total_params', 'active_params']) {
    assert.ok(Number.isInteger(j[k]), k);
  }
  assert.equal(j.total_params, j.vision_params + j.adapter_params + j.language_params_total);
  const bad = await captureStdout(() => infoCommand(['--preset', 'nope']));
  assert.notEqual(bad.code, 0);
  const usage = await captureStdout(() => infoCommand([]));
  assert.equal(usage.code, 2);
  const human = await captureStdout(() => infoCommand(['--preset', 'tiny']));
  assert.match(human.out, /Seed-ViT/);
});
