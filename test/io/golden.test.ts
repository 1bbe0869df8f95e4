/**
 * Every .safetensors under the shared golden folder loads, matches its header
 * (checked by an independent parse), its neighbouring .json where present,
 * and model_info.json for checkpoints; the sharded checkpoint loads via its index.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bf16ToF32, type Tensor, type TypedArray } from '../../src/tensor/index.ts';
import { openSafetensors, mmapStats } from '../../src/io/safetensors.ts';
import { openCheckpoint } from '../../src/io/checkpoint.ts';
import { independentParse, rawElement, equalBytes, bytesOfTensor, type RawTensor } from './_helpers.ts';

const GOLDEN = resolve(dirname(fileURLToPath(import.meta.url)), '../../../shared/golden');
const skip = existsSync(GOLDEN) ? false : `golden folder not found at ${GOLDEN}`;

function walk(d: string, out: string[] = []): string[] {
  for (const e of readdirSync(d, { withFileTypes: true })) {
    if (e.isDirectory()) {
      if (e.name !== 'tools') walk(join(d, e.name), out);
    } else if (e.name.endsWith('.safetensors')) out.push(join(d, e.name));
  }
  return out.sort();
}

const DT: Record<string, string> = { F32: 'float32', BF16: 'bfloat16', U8: 'uint8', I32: 'int32', I64: 'int64', F16: 'float16', F64: 'float64' };

/** Element `i` of our tensor, decoded to a number. */
function element(t: Tensor, i: number): number {
  const d = t.data<TypedArray>();
  if (t.dtype === 'bfloat16') return bf16ToF32((d as Uint16Array)[i]);
  return Number(d[i]);
}

function checkValues(label: string, t: Tensor, raw: RawTensor): void {
  assert.ok(equalBytes(bytesOfTensor(t), raw.bytes), `${label}: bytes differ from the independent parse`);
  const n = t.size;
  for (const i of n === 0 ? [] : [0, 1, Math.floor(n / 2), n - 2, n - 1].filter((i) => i >= 0 && i < n)) {
    assert.ok(Object.is(element(t, i), rawElement(raw, i)), `${label}[${i}]: ${element(t, i)} vs ${rawElement(raw, i)}`);
  }
}

test('every golden .safetensors loads and matches its header, an independent parse and its .json', { skip }, () => {
  const files = walk(GOLDEN);
  assert.ok(files.length >= 20, `expected the golden files, found ${files.length}`);
  const start = mmapStats();
  let tensors = 0;
  let jsonChecked = 0;
  for (const path of files) {
    const rel = relative(GOLDEN, path);
    const raw = independentParse(path);
    const f = openSafetensors(path);
    assert.deepEqual(f.names().sort(), [...raw.tensors.keys()].sort(), rel);
    assert.deepEqual(f.metadata, raw.metadata ?? {}, rel);
    for (const e of f.tensors) {
      const r = raw.tensors.get(e.name)!;
      assert.equal(e.fileDtype, r.dtype, `${rel}:${e.name}`);
      assert.equal(e.dtype, DT[r.dtype], `${rel}:${e.name}`);
      assert.deepEqual(e.shape, r.shape, `${rel}:${e.name}`);
      const t = f.get(e.name);
      assert.equal(t.dtype, DT[r.dtype]);
      assert.deepEqual([...t.shape], r.shape, `${rel}:${e.name}`);
      assert.equal(t.storage.ownership, 'external', `${rel}:${e.name} should be zero-copy`);
      checkValues(`${rel}:${e.name}`, t, r);
      t.dispose();
      tensors++;
    }
    // The neighbouring .json lists names, dtypes and shapes for case/processor files.
    const side = path.replace(/\.safetensors$/, '.json');
    if (existsSync(side)) {
      const listed = (JSON.parse(readFileSync(side, 'utf8')) as { tensors?: Record<string, { dtype: string; shape: number[] }> }).tensors;
      if (listed) {
        assert.deepEqual(Object.keys(listed).sort(), f.names().sort(), `${rel}: names vs .json`);
        for (const [name, { dtype, shape }] of Object.entries(listed)) {
          // Case files spell dtypes as in the file (F32), processor files as torch does (float32).
          const ours = dtype in DT ? DT[dtype] : dtype;
          assert.equal(f.info(name).dtype, ours, `${rel}:${name} dtype vs .json (${dtype})`);
          assert.deepEqual(f.info(name).shape, shape, `${rel}:${name} shape vs .json`);
        }
        jsonChecked++;
      }
    }
    f.close();
  }
  assert.ok(tensors > 400 && jsonChecked >= 15, `checked ${tensors} tensors, ${jsonChecked} .json files`);
  assert.equal(mmapStats().mappedBytes, start.mappedBytes, 'everything unmapped');
});

test('golden test image matches its integer formula (values, not just bytes)', { skip }, () => {
  const f = openSafetensors(join(GOLDEN, 'images.safetensors'));
  const t = f.get('img_56x84');
  const [H, W, C] = t.shape;
  const d = t.data<Uint8Array>();
  let bad = 0;
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      const rgb = [Math.floor((x * 255) / (W - 1)), Math.floor((y * 255) / (H - 1)), 40 + 160 * ((Math.floor(x / 7) + Math.floor(y / 5)) % 2) + ((x * y) % 23)];
      for (let c = 0; c < C; c++) if (d[(y * W + x) * C + c] !== rgb[c]) bad++;
    }
  }
  assert.equal(bad, 0);
  t.dispose();
  f.close();
});

const FAMILIES = ['qwen2_vl_tiny', 'qwen2_5_vl_tiny', 'qwen3_vl_moe_tiny'];

test('golden checkpoints load via CheckpointReader and match model_info.json', { skip }, () => {
  for (const fam of FAMILIES) {
    const dir = join(GOLDEN, fam, 'model');
    const info = JSON.parse(readFileSync(join(GOLDEN, fam, 'model_info.json'), 'utf8')) as { files: string[]; file_tensors: Record<string, number[]> };
    const r = openCheckpoint(dir);
    assert.deepEqual(r.files.sort(), [...info.files].sort(), fam);
    assert.equal(r.sharded, info.files.length > 1, fam);
    assert.deepEqual(r.warnings, [], fam);
    assert.ok(r.config && typeof r.config === 'object', `${fam}: config.json parsed`);
    assert.deepEqual(r.names().sort(), Object.keys(info.file_tensors).sort(), fam);
    for (const [name, shape] of Object.entries(info.file_tensors)) {
      const e = r.info(name);
      assert.deepEqual(e.shape, shape, `${fam}:${name}`);
      assert.equal(e.dtype, 'bfloat16', `${fam}:${name}`);
    }
    r.close();
  }
});

test('the sharded golden checkpoint reads each tensor from the shard its index names', { skip }, () => {
  const dir = join(GOLDEN, 'qwen2_5_vl_tiny', 'model');
  const index = JSON.parse(readFileSync(join(dir, 'model.safetensors.index.json'), 'utf8')) as { metadata: { total_size: number }; weight_map: Record<string, string> };
  const start = mmapStats();
  const r = openCheckpoint(dir);
  assert.equal(r.sharded, true);
  assert.equal(r.indexMetadata?.total_size, index.metadata.total_size);
  const raws = new Map<string, ReturnType<typeof independentParse>>();
  let total = 0;
  for (const [name, file] of Object.entries(index.weight_map)) {
    assert.equal(r.info(name).file, file, name);
    if (!raws.has(file)) raws.set(file, independentParse(join(dir, file)));
    const raw = raws.get(file)!.tensors.get(name)!;
    const t = r.get(name);
    checkValues(`${file}:${name}`, t, raw);
    total += raw.bytes.length;
    t.dispose();
  }
  assert.equal(total, index.metadata.total_size);
  r.close();
  assert.equal(mmapStats().mappedBytes, start.mappedBytes);
});
