/**
 * `seedvl quantize` for Qwen-VL directories: the written directory is a Hub
 * directory with quantization_config, loads its quantised Linears straight
 * from the mapped packed tensors (no re-quantisation, no copy), and gives
 * exactly the logits of quantising the input at load. Bad inputs name the
 * file / key. Also: every Linear of a loaded bf16 model wraps the mapped
 * tensor itself (nn factories, no f32 copy).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Linear } from '../../../src/nn/linear.ts';
import { loadQwenModel } from '../../../src/models/qwen_vl/load.ts';
import { quantizeQwenModel } from '../../../src/models/qwen_vl/quantize.ts';
import { quantizeQwenCheckpoint } from '../../../src/models/qwen_vl/quant_checkpoint.ts';
import { WeightStore, type TensorSource } from '../../../src/models/qwen_vl/weights.ts';
import { buildQwenModel } from '../../../src/models/qwen_vl/build.ts';
import { readQwenConfig } from '../../../src/models/qwen_vl/load.ts';
import { openCheckpoint } from '../../../src/io/index.ts';
import { openSafetensors } from '../../../src/io/safetensors.ts';
import { loadModelDir } from '../../../src/models/registry.ts';
import { quantizeCommand } from '../../../src/cli/quantize.ts';
import { loadFromArgs, UsageError } from '../../../src/cli/model_args.ts';
import { qwenRollout, caseInputs } from '../../../src/generation/quant_accuracy_qwen.ts';
import type { QwenVLModel } from '../../../src/models/qwen_vl/model.ts';
import { GOLDEN, goldenAvailable, modelDir, copyModel, tempDir, throwsNaming, FAMILIES } from './_helpers.ts';

const skip = goldenAvailable ? false : `golden models not found under ${GOLDEN}`;

/** Last-position logits and greedy tokens of a short rollout on the family's first golden image case. */
function rollout(family: string, m: QwenVLModel): { last: number[]; steps: number[][] } {
  const dir = join(GOLDEN, `${family}_tiny/cases`);
  const st = openSafetensors(join(dir, 'one_image.safetensors'));
  const inp = caseInputs(JSON.parse(readFileSync(join(dir, 'one_image.json'), 'utf8')), st);
  try {
    const r = qwenRollout(m, inp, 2, null);
    return { last: Array.from(r.last), steps: r.steps.map((s) => Array.from(s)) };
  } finally {
    inp.images?.pixelValues.dispose();
    st.close();
  }
}

function quantizedLinears(m: QwenVLModel): Map<string, Linear> {
  const out = new Map<string, Linear>();
  for (const [p, mod] of m.namedModules()) if (mod instanceof Linear && mod.quantized) out.set(p, mod);
  return out;
}

test('quantised directory: same layers, same packed weights, exactly the logits of quantising at load (all families, int8 + int4)', { skip }, () => {
  for (const family of FAMILIES) {
    const plain = loadQwenModel(modelDir(family)).model;
    const float = rollout(family, plain);
    plain.dispose();
    for (const bits of [8, 4] as const) {
      const out = join(tempDir(`q${bits}`), 'out');
      const r = quantizeQwenCheckpoint(modelDir(family), out, { bits });
      const atLoad = loadQwenModel(modelDir(family)).model;
      const rep = quantizeQwenModel(atLoad, { bits });
      const fromDisk = loadQwenModel(out);
      try {
        const at = `${family} int${bits}`;
        assert.equal(r.layers, rep.layers, at);
        assert.deepEqual(r.groupSizes, rep.groupSizes, at);
        assert.deepEqual(fromDisk.quantization?.bits, bits);
        const a = quantizedLinears(atLoad), b = quantizedLinears(fromDisk.model);
        assert.deepEqual([...b.keys()], [...a.keys()], `${at}: the same Linears are quantised`);
        for (const [p, la] of a) {
          const qa = la.quantized!, qb = b.get(p)!.quantized!;
          assert.deepEqual([qb.bits, qb.groupSize, ...qb.shape], [qa.bits, qa.groupSize, ...qa.shape], `${at} ${p}`);
          assert.deepEqual(Buffer.from(qb.q.data<Uint8Array>()), Buffer.from(qa.q.data<Uint8Array>()), `${at} ${p}: packed values`);
          // Zero-copy: the packed weight is the file mapping, not a copy.
          assert.equal(qb.q.storage.ownership, 'external', `${at} ${p}`);
          assert.equal(qb.scales.storage.ownership, 'external', `${at} ${p}`);
        }
        // Routed experts are quantised too (views into each layer's stacked packed tensors, checked above).
        const experts = [...b.keys()].filter((p) => /\.experts\.\d+\./.test(p));
        if (family === 'qwen3_vl_moe') assert.ok(experts.length > 0, `${at}: routed experts quantised`);
        const got = rollout(family, fromDisk.model), want = rollout(family, atLoad);
        assert.ok(want.last.length > 100);
        assert.deepEqual(got, want, `${at}: logits`);
        if (bits === 4) assert.notDeepEqual(want.last, float.last, `${at}: quantising changes the logits (so equality above means something)`);
      } finally {
        atLoad.dispose();
        fromDisk.model.dispose();
      }
    }
  }
});

test('the written directory: config + quantization_config, companion files, sharded like the input with an index, packed tensor names', { skip }, () => {
  const out = join(tempDir('layout'), 'q');
  const r = quantizeQwenCheckpoint(modelDir('qwen2_5_vl'), out, { bits: 4, groupSize: 64 });
  const cfg = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'));
  const orig = JSON.parse(readFileSync(join(modelDir('qwen2_5_vl'), 'config.json'), 'utf8'));
  assert.deepEqual({ ...cfg, quantization_config: undefined }, { ...orig, quantization_config: undefined });
  assert.equal(cfg.quantization_config.quant_method, 'seedvl');
  assert.equal(cfg.quantization_config.bits, 4);
  assert.equal(cfg.quantization_config.group_size, 64);
  assert.equal(cfg.quantization_config.modules.length, r.layers);
  assert.ok(cfg.quantization_config.modules.includes('lm_head'));
  for (const f of ['generation_config.json', 'preprocessor_config.json', 'video_preprocessor_config.json']) {
    assert.deepEqual(readFileSync(join(out, f)), readFileSync(join(modelDir('qwen2_5_vl'), f)), f);
  }
  assert.ok(existsSync(join(out, 'model.safetensors.index.json')), 'the input is sharded, so is the output');
  const reader = openCheckpoint(out);
  try {
    const names = reader.names();
    assert.ok(names.includes('lm_head.qweight') && names.includes('lm_head.scales') && !names.includes('lm_head.weight'));
    assert.equal(reader.info('model.layers.0.self_attn.q_proj.qweight').dtype, 'uint8');
    assert.equal(reader.info('model.layers.0.self_attn.q_proj.scales').dtype, 'float16');
    assert.equal(reader.info('model.embed_tokens.weight').dtype, 'bfloat16', 'other tensors unchanged');
    assert.equal(reader.info('model.layers.0.self_attn.q_proj.bias').dtype, 'bfloat16');
  } finally {
    reader.close();
  }
});

test('bad inputs: bits, non-empty out-dir without force, already quantised, missing shard, damaged quantised dirs', { skip }, () => {
  const base = tempDir('bad');
  const src = modelDir('qwen2_vl');
  assert.throws(() => quantizeQwenCheckpoint(src, join(base, 'x'), { bits: 3 as 4 }), /bits must be 4 or 8, got 3/);
  const busy = join(base, 'busy');
  mkdirSync(busy);
  writeFileSync(join(busy, 'notes.txt'), 'keep me');
  throwsNaming(() => quantizeQwenCheckpoint(src, busy, { bits: 8 }), busy, 'not empty', '--force');
  assert.ok(existsSync(join(busy, 'notes.txt')));
  quantizeQwenCheckpoint(src, busy, { bits: 8, force: true });
  assert.ok(!existsSync(join(busy, 'notes.txt')) && existsSync(join(busy, 'config.json')));
  const empty = join(base, 'empty');
  mkdirSync(empty);
  quantizeQwenCheckpoint(src, empty, { bits: 8 }); // an existing empty directory is fine
  throwsNaming(() => quantizeQwenCheckpoint(busy, join(base, 'y'), { bits: 4 }), join(busy, 'config.json'), 'already quantised');
  throwsNaming(() => quantizeQwenCheckpoint(src, src, { bits: 4 }), 'must differ');

  const noShard = copyModel('qwen2_5_vl');
  rmSync(join(noShard, 'model-00002-of-00002.safetensors'));
  throwsNaming(() => quantizeQwenCheckpoint(noShard, join(base, 'z'), { bits: 4 }), 'model-00002-of-00002.safetensors');

  // A quantised dir whose config lists a module without its packed tensors.
  const cfgFile = join(empty, 'config.json');
  const cfg = JSON.parse(readFileSync(cfgFile, 'utf8'));
  cfg.quantization_config.modules.push('model.layers.0.self_attn.q_proj_typo');
  writeFileSync(cfgFile, JSON.stringify(cfg));
  throwsNaming(() => loadQwenModel(empty), 'model.layers.0.self_attn.q_proj_typo.qweight', 'missing');
  cfg.quantization_config.modules.pop();
  cfg.quantization_config.quant_method = 'awq';
  writeFileSync(cfgFile, JSON.stringify(cfg));
  throwsNaming(() => loadQwenModel(empty), cfgFile, 'quantization_config.quant_method', 'awq');
  cfg.quantization_config.quant_method = 'seedvl';
  cfg.quantization_config.bits = 3;
  writeFileSync(cfgFile, JSON.stringify(cfg));
  throwsNaming(() => loadQwenModel(empty), 'quantization_config.bits');
  cfg.quantization_config.bits = 4; // the stored tensors are int8
  writeFileSync(cfgFile, JSON.stringify(cfg));
  throwsNaming(() => loadQwenModel(empty), 'model.layers.0.self_attn.q_proj.qweight', 'uint8');

  // Stacked expert tensors that do not fit the config: the error names the packed tensor.
  const moe = join(base, 'moe');
  quantizeQwenCheckpoint(modelDir('qwen3_vl_moe'), moe, { bits: 8 });
  const moeCfgFile = join(moe, 'config.json');
  const moeCfg = JSON.parse(readFileSync(moeCfgFile, 'utf8'));
  moeCfg.text_config.moe_intermediate_size *= 2;
  writeFileSync(moeCfgFile, JSON.stringify(moeCfg));
  throwsNaming(() => loadQwenModel(moe), 'mlp.experts.gate_up_proj.qweight', 'not [E, ');
});

test('a loaded bf16 model wraps the mapped tensors: Linear weights are the store\'s tensors, no float32 copy', { skip }, () => {
  const dir = modelDir('qwen3_vl_moe');
  const config = readQwenConfig(dir);
  const reader = openCheckpoint(dir);
  const handed = new Map<string, unknown>();
  const src: TensorSource = {
    dir, names: () => reader.names(), fileOf: (n) => n,
    get: (n) => {
      const t = reader.get(n);
      handed.set(n, t);
      return t;
    },
  };
  const m = buildQwenModel(config, new WeightStore(src, { numExperts: config.text.moe!.numExperts }));
  try {
    const q = m.language.layers[0]!.selfAttn.qProj;
    assert.equal(q.weight, handed.get('model.language_model.layers.0.self_attn.q_proj.weight'), 'the very tensor the checkpoint handed out');
    assert.equal(q.weight.dtype, 'bfloat16');
    let linears = 0;
    for (const [p, mod] of m.namedModules()) {
      if (!(mod instanceof Linear)) continue;
      linears++;
      assert.equal(mod.weight.dtype, 'bfloat16', p);
      assert.equal(mod.weight.storage.ownership, 'external', `${p}: mapped, not copied`);
    }
    assert.ok(linears > 20);
  } finally {
    m.dispose();
    reader.close();
  }
});

test('seedvl quantize <qwen-dir> <out> --bits 4 --group-size 32: writes a directory that seedvl run loads', { skip }, async () => {
  const inDir = copyModel('qwen2_5_vl', { tokenizer: true });
  const out = join(tempDir('cli'), 'q4');
  const logs: string[] = [];
  const orig = console.log;
  console.log = (...a: unknown[]) => void logs.push(a.join(' '));
  let rc: number;
  try {
    rc = await quantizeCommand([inDir, out, '--bits', '4', '--group-size', '32', '--json']);
  } finally {
    console.log = orig;
  }
  assert.equal(rc, 0, logs.join('\n'));
  const rep = JSON.parse(logs.at(-1)!);
  assert.equal(rep.quantized_layers, 15);
  assert.deepEqual(rep.group_sizes, { 32: 15 });
  assert.ok(existsSync(join(out, 'tokenizer.json')), 'the tokenizer is copied');
  const loaded = await loadModelDir(out, { maxBatch: 1, maxContext: 64 });
  assert.ok(loaded.qwenConfig);
  const errs: string[] = [];
  const origErr = console.error;
  console.error = (...a: unknown[]) => void errs.push(a.join(' '));
  try {
    assert.equal(await quantizeCommand([inDir, out, '--bits', '8']), 1, 'out-dir exists');
    assert.equal(await quantizeCommand([out, join(tempDir('cli2'), 'q'), '--bits', '8']), 1, 'already quantised');
    assert.equal(await quantizeCommand([inDir, out, '--bits', '8', '--group', '64', '--group-size', '64']), 2);
  } finally {
    console.error = origErr;
  }
  assert.match(errs[0]!, /not empty \(pass --force/);
  assert.match(errs[1]!, /already quantised/);
  assert.match(errs[2]!, /--group-size or --group, not both/);
  // Loading it for run/chat/serve: --quantize with other bits is refused before the weights load.
  await assert.rejects(loadFromArgs({ model: out, quantize: '8' }, true), (e: unknown) => e instanceof UsageError && /already quantised to int4.*--quantize 8/.test((e as Error).message));
  const same = await loadFromArgs({ model: out, quantize: '4', 'max-context': '64' }, true);
  same.engine.dispose();
});
