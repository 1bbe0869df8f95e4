/** Checkpoint directories: sharded writing, index validation, atomic replacement. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tensor, tidy, type Tensor } from '../../src/tensor/index.ts';
import { openCheckpoint, writeCheckpoint, CheckpointError } from '../../src/io/checkpoint.ts';
import { moveIntoPlace } from '../../src/io/checkpoint_write.ts';
import { saveSafetensors, mmapStats } from '../../src/io/safetensors.ts';
import { tempDir, randomBitsTensor, bytesOfTensor, equalBytes, independentParse } from './_helpers.ts';

const root = tempDir('ckpt');

/** 6 tensors of 64..384 bytes, mixed dtypes. */
function model(seed: number): Map<string, Tensor> {
  return new Map<string, Tensor>([
    ['embed.weight', randomBitsTensor([16, 4], 'bfloat16', seed)],
    ['layers.0.w', randomBitsTensor([8, 8], 'float32', seed + 1)],
    ['layers.0.b', randomBitsTensor([8], 'float32', seed + 2)],
    ['layers.1.w', randomBitsTensor([8, 8], 'float16', seed + 3)],
    ['layers.1.idx', randomBitsTensor([4], 'int64', seed + 4)],
    ['head.weight', randomBitsTensor([48], 'float64', seed + 5)],
  ]);
}

function disposeAll(m: Map<string, Tensor>): void {
  for (const t of m.values()) t.dispose();
}

function assertSame(dir: string, m: Map<string, Tensor>): void {
  const r = openCheckpoint(dir);
  assert.deepEqual(r.names().sort(), [...m.keys()].sort());
  for (const [name, t] of m) {
    const back = r.get(name);
    assert.equal(back.dtype, t.dtype, name);
    assert.deepEqual([...back.shape], [...t.shape], name);
    assert.ok(equalBytes(bytesOfTensor(back), bytesOfTensor(t)), `${name}: bytes differ`);
    back.dispose();
  }
  r.close();
}

test('writes shards of at most maxShardBytes plus an index, and reads them back bit-identically', () => {
  const m = model(1);
  const dir = join(root, 'sharded');
  const out = writeCheckpoint(dir, m, { config: { model_type: 'test', hidden: 8 }, maxShardBytes: 400, files: { 'generation_config.json': '{"bos_token_id": 1}' } });
  assert.equal(out.sharded, true);
  const shards = out.files.filter((f) => f.endsWith('.safetensors'));
  assert.ok(shards.length >= 3, `expected several shards, got ${shards}`);
  assert.deepEqual(shards, shards.map((_, i) => `model-${String(i + 1).padStart(5, '0')}-of-${String(shards.length).padStart(5, '0')}.safetensors`));
  assert.equal(out.files.at(-1), 'model.safetensors.index.json', 'the index is written last');
  assert.deepEqual(readdirSync(dir).sort(), [...out.files].sort());
  for (const s of shards) {
    const r = openCheckpoint(join(dir, s));
    const bytes = r.tensors.reduce((a, t) => a + t.shape.reduce((x, y) => x * y, 1) * ({ bfloat16: 2, float16: 2, float32: 4, float64: 8, int64: 8 } as Record<string, number>)[t.dtype!], 0);
    assert.ok(bytes <= 400 || r.names().length === 1, `${s}: ${bytes} bytes in ${r.names().length} tensors`);
    r.close();
  }
  const index = JSON.parse(readFileSync(join(dir, 'model.safetensors.index.json'), 'utf8'));
  assert.equal(index.metadata.total_size, out.totalBytes);
  assert.deepEqual(Object.keys(index.weight_map), [...m.keys()].sort());
  const r = openCheckpoint(dir);
  assert.equal(r.sharded, true);
  assert.deepEqual(r.config, { model_type: 'test', hidden: 8 });
  assert.deepEqual(r.warnings, []);
  r.close();
  assertSame(dir, m);
  assert.equal(readFileSync(join(dir, 'generation_config.json'), 'utf8'), '{"bos_token_id": 1}');
  disposeAll(m);
});

test('one shard is written as model.safetensors without an index, with format=pt metadata', () => {
  const m = model(2);
  const dir = join(root, 'single');
  const out = writeCheckpoint(dir, m);
  assert.equal(out.sharded, false);
  assert.deepEqual(readdirSync(dir), ['model.safetensors']);
  const r = openCheckpoint(dir);
  assert.equal(r.sharded, false);
  assert.equal(r.config, null);
  r.close();
  assert.deepEqual(independentParse(join(dir, 'model.safetensors')).metadata, { format: 'pt' });
  assertSame(dir, m);
  disposeAll(m);
});

test('an existing directory is refused without overwrite, and replaced whole with it', () => {
  const a = model(3);
  const b = model(4);
  const dir = join(root, 'replace');
  writeCheckpoint(dir, a, { maxShardBytes: 300, config: { v: 1 } });
  assert.throws(() => writeCheckpoint(dir, b), /already exists \(pass overwrite: true/);
  const reader = openCheckpoint(dir); // open readers keep the old files
  const oldHead = reader.get('head.weight');
  writeCheckpoint(dir, b, { overwrite: true, config: { v: 2 } });
  assert.deepEqual(readdirSync(dir).sort(), ['config.json', 'model.safetensors'], 'old shards and index are gone');
  assertSame(dir, b);
  assert.ok(equalBytes(bytesOfTensor(oldHead), bytesOfTensor(a.get('head.weight')!)), 'an open reader still sees the old checkpoint');
  oldHead.dispose();
  reader.close();
  assert.deepEqual(readdirSync(root).filter((n) => n.includes('.tmp-') || n.includes('.old-')), []);
  disposeAll(a);
  disposeAll(b);
});

test('directory replacement works by exchange and by the two-rename fallback', () => {
  for (const exchange of [true, false]) {
    const target = join(root, `move-${exchange}`);
    const tmp = `${target}.tmp-test`;
    mkdirSync(target);
    writeFileSync(join(target, 'old.txt'), 'old');
    mkdirSync(tmp);
    writeFileSync(join(tmp, 'new.txt'), 'new');
    moveIntoPlace(tmp, target, { exchange });
    assert.deepEqual(readdirSync(target), ['new.txt'], `exchange=${exchange}`);
    assert.ok(!existsSync(tmp));
    assert.deepEqual(readdirSync(root).filter((n) => n.startsWith(`move-${exchange}.`)), [], 'no leftovers');
  }
});

test('a failure mid-write leaves the previous checkpoint intact and no temp directory', () => {
  const a = model(5);
  const dir = join(root, 'atomic');
  writeCheckpoint(dir, a, { maxShardBytes: 300 });
  const before = readdirSync(dir).sort().map((f) => [f, readFileSync(join(dir, f))] as const);
  const b = model(6);
  const bomb = tensor([1, 2, 3], [3], 'float32');
  Object.defineProperty(bomb, 'storage', { get() { throw new Error('boom: tensor lost during write'); } });
  b.set('zz.bomb', bomb); // last in order: earlier shards are already written when it throws
  assert.throws(() => writeCheckpoint(dir, b, { maxShardBytes: 300, overwrite: true }), /boom/);
  const after = readdirSync(dir).sort().map((f) => [f, readFileSync(join(dir, f))] as const);
  assert.deepEqual(after.map(([f]) => f), before.map(([f]) => f));
  for (let i = 0; i < before.length; i++) assert.ok(after[i][1].equals(before[i][1]), before[i][0]);
  assert.deepEqual(readdirSync(root).filter((n) => n.includes('.tmp-')), []);
  assertSame(dir, a);
  b.delete('zz.bomb');
  disposeAll(a);
  disposeAll(b);
});

/** A fresh sharded checkpoint to corrupt. */
function sharded(name: string): { dir: string; index: { metadata: { total_size: number }; weight_map: Record<string, string> } } {
  const m = model(7);
  const dir = join(root, name);
  writeCheckpoint(dir, m, { maxShardBytes: 300 });
  disposeAll(m);
  return { dir, index: JSON.parse(readFileSync(join(dir, 'model.safetensors.index.json'), 'utf8')) };
}

function writeIndex(dir: string, index: unknown): void {
  writeFileSync(join(dir, 'model.safetensors.index.json'), JSON.stringify(index));
}

function expectCheckpointError(dir: string, re: RegExp, key?: string): void {
  const start = mmapStats().mappings;
  assert.throws(() => openCheckpoint(dir), (e: unknown) => {
    assert.ok(e instanceof CheckpointError, String(e));
    assert.match(e.message, re);
    assert.ok(e.message.includes(dir), `names the checkpoint: ${e.message}`);
    if (key) assert.equal(e.tensor, key);
    return true;
  });
  assert.equal(mmapStats().mappings, start, 'shards opened before the error are closed');
}

test('index validation: a missing shard is named with a key it holds', () => {
  const { dir, index } = sharded('v-missing');
  const [key, file] = Object.entries(index.weight_map).at(-1)!;
  unlinkSync(join(dir, file));
  expectCheckpointError(dir, new RegExp(`shard '${file}' is missing \\(it holds \\d+ indexed tensors, e\\.g\\. '[^']+'\\)`));
  void key;
});

test('index validation: a shard of the N-of-M series that the index skips must still exist', () => {
  const { dir, index } = sharded('v-series');
  const files = [...new Set(Object.values(index.weight_map))].sort();
  const last = files.at(-1)!;
  const map = Object.fromEntries(Object.entries(index.weight_map).filter(([, f]) => f !== last));
  unlinkSync(join(dir, last));
  writeIndex(dir, { metadata: {}, weight_map: map });
  expectCheckpointError(dir, new RegExp(`shard '${last}' of the series is missing`));
});

test('index validation: an indexed tensor absent from its shard is named with the shard', () => {
  const { dir, index } = sharded('v-absent');
  const file = Object.values(index.weight_map)[0];
  writeIndex(dir, { ...index, weight_map: { ...index.weight_map, 'ghost.weight': file } });
  expectCheckpointError(dir, new RegExp(`tensor 'ghost\\.weight' is indexed in '${file}', but that shard has no such tensor`), 'ghost.weight');
});

test('index validation: a tensor in a shard but not in the index is an error, or a warning on request', () => {
  const { dir, index } = sharded('v-unindexed');
  const [dropped, file] = Object.entries(index.weight_map)[0];
  const map = { ...index.weight_map };
  delete map[dropped];
  writeIndex(dir, { metadata: index.metadata, weight_map: map });
  expectCheckpointError(dir, new RegExp(`tensor '${dropped.replace(/\./g, '\\.')}' is in shard '${file}' but not in the index`), dropped);
  const heard: string[] = [];
  const r = openCheckpoint(dir, { unindexed: 'warn', onWarning: (w) => heard.push(w) });
  assert.equal(r.warnings.length, 1);
  assert.deepEqual(heard, r.warnings);
  assert.match(r.warnings[0], /not in the index; loading it from that shard/);
  assert.equal(r.info(dropped).file, file);
  tidy(() => r.get(dropped));
  r.close();
});

test('index validation: a tensor present in two shards is an error naming both', () => {
  const { dir, index } = sharded('v-dup');
  const files = [...new Set(Object.values(index.weight_map))].sort();
  const key = Object.keys(index.weight_map).find((k) => index.weight_map[k] === files[0])!;
  // Rewrite the second shard with an extra copy of `key`.
  const r0 = openCheckpoint(join(dir, files[0]));
  const r1 = openCheckpoint(join(dir, files[1]));
  const extra = new Map(r1.names().map((n) => [n, r1.get(n, { copy: true })] as [string, Tensor]));
  extra.set(key, r0.get(key, { copy: true }));
  r0.close();
  r1.close();
  saveSafetensors(join(dir, files[1]), extra);
  for (const t of extra.values()) t.dispose();
  expectCheckpointError(dir, new RegExp(`is also in '${files[1]}' \\(indexed in '${files[0]}'\\)`), key);
});

test('index validation: malformed index files are named', () => {
  const { dir, index } = sharded('v-bad');
  writeFileSync(join(dir, 'model.safetensors.index.json'), '{"weight_map": {');
  expectCheckpointError(dir, /model\.safetensors\.index\.json: not valid JSON/);
  writeIndex(dir, { weight_map: [] });
  expectCheckpointError(dir, /"weight_map" must be an object/);
  writeIndex(dir, { weight_map: { 'a.weight': '../elsewhere.safetensors' } });
  expectCheckpointError(dir, /weight_map\['a\.weight'\] = '\.\.\/elsewhere\.safetensors' must be a plain file name/, 'a.weight');
  writeIndex(dir, { weight_map: { 'a.weight': 7 } });
  expectCheckpointError(dir, /weight_map\['a\.weight'\] must be a file name, got 7/, 'a.weight');
  writeIndex(dir, { ...index, metadata: { total_size: 1 } });
  const r = openCheckpoint(dir, { onWarning: () => {} });
  assert.match(r.warnings.join('\n'), /metadata\.total_size is 1, but the tensors hold \d+ bytes/);
  r.close();
  writeFileSync(join(dir, 'config.json'), '{oops');
  expectCheckpointError(dir, /config\.json: not valid JSON/);
});

test('a directory with no weights, and unknown tensor names, are named errors', () => {
  const empty = join(root, 'nothing');
  mkdirSync(empty);
  expectCheckpointError(empty, /neither model\.safetensors nor model\.safetensors\.index\.json found/);
  const m = model(8);
  const dir = join(root, 'names');
  writeCheckpoint(dir, m);
  const r = openCheckpoint(dir);
  assert.throws(() => r.get('nope'), (e: Error) => e instanceof CheckpointError && /no tensor 'nope'/.test(e.message));
  assert.throws(() => r.info('nope'), /no tensor 'nope'/);
  r.close();
  disposeAll(m);
  rmSync(dir, { recursive: true });
  assert.ok(!existsSync(dir));
});

test('bad writeCheckpoint arguments are refused before anything is written', () => {
  const m = model(9);
  const dir = join(root, 'bad-args');
  assert.throws(() => writeCheckpoint(dir, m, { maxShardBytes: 0 }), /maxShardBytes must be > 0/);
  assert.throws(() => writeCheckpoint(dir, m, { files: { '../x': 'y' } }), /extra file name '\.\.\/x' is not allowed/);
  assert.throws(() => writeCheckpoint(dir, m, { files: { 'model.safetensors': 'y' } }), /is not allowed/);
  assert.ok(!existsSync(dir));
  assert.deepEqual(readdirSync(root).filter((n) => n.startsWith('bad-args')), []);
  disposeAll(m);
});
