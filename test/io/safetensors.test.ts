/** safetensors read/write: round trips, zero-copy lifetime, alignment, atomic writes. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Tensor, tensor, transpose, narrow, nativeMemory, tidy, type DType } from '../../src/tensor/index.ts';
import { openSafetensors, saveSafetensors, mmapStats, SafetensorsError } from '../../src/io/safetensors.ts';
import { tempDir, randomBitsTensor, bytesOfTensor, equalBytes, craftFile, independentParse } from './_helpers.ts';

const dir = tempDir('st');
const ALL: [DType, string][] = [
  ['float32', 'F32'], ['float64', 'F64'], ['float16', 'F16'], ['bfloat16', 'BF16'],
  ['int64', 'I64'], ['int32', 'I32'], ['uint8', 'U8'], ['int8', 'I8'],
];

test('every dtype round-trips bit-identically (random bit patterns, NaN payloads included)', () => {
  const src: Record<string, Tensor> = {};
  ALL.forEach(([dt], i) => {
    src[`t.${dt}`] = randomBitsTensor([3, 5, 7], dt, 100 + i);
    src[`odd.${dt}`] = randomBitsTensor([13], dt, 200 + i); // odd sizes shift the following tensors
  });
  src.scalar = randomBitsTensor([], 'float32', 7);
  src.empty = randomBitsTensor([0, 4], 'float32', 8);
  const path = join(dir, 'all.safetensors');
  saveSafetensors(path, src, { note: 'round trip', format: 'pt' });

  const raw = independentParse(path);
  assert.deepEqual(raw.metadata, { note: 'round trip', format: 'pt' });
  const f = openSafetensors(path);
  assert.deepEqual(f.metadata, { note: 'round trip', format: 'pt' });
  assert.equal(f.tensors.length, Object.keys(src).length);
  for (const [name, t] of Object.entries(src)) {
    const e = f.info(name);
    assert.equal(e.dtype, t.dtype, name);
    assert.equal(e.fileDtype, ALL.find(([d]) => d === t.dtype)![1], name);
    assert.deepEqual(e.shape, [...t.shape], name);
    assert.equal(raw.tensors.get(name)!.dtype, e.fileDtype);
    assert.ok(equalBytes(raw.tensors.get(name)!.bytes, bytesOfTensor(t)), `${name}: independent parse differs`);
    const back = f.get(name);
    assert.equal(back.dtype, t.dtype);
    assert.deepEqual([...back.shape], [...t.shape]);
    assert.equal(back.storage.ownership, t.size === 0 ? 'js' : 'external', `${name} should be zero-copy`);
    assert.ok(equalBytes(bytesOfTensor(back), bytesOfTensor(t)), `${name}: bytes differ after round trip`);
    back.dispose();
  }
  f.close();
  for (const t of Object.values(src)) t.dispose();
});

test('the writer aligns every tensor to its element size (zero-copy for all)', () => {
  const path = join(dir, 'align.safetensors');
  const ts = { a: tensor([1, 2, 3], [3], 'uint8'), b: tensor([1.5], [1], 'float64'), c: tensor([7, 8, 9], [3], 'bfloat16'), d: tensor([1], [1], 'int64') };
  saveSafetensors(path, ts);
  const f = openSafetensors(path);
  for (const e of f.tensors) assert.equal(e.fileOffset % ({ uint8: 1, float64: 8, bfloat16: 2, int64: 8 } as Record<string, number>)[e.dtype!], 0, e.name);
  assert.equal((8 + f.headerLength) % 8, 0, 'header padded to 8 bytes');
  tidy(() => {
    assert.deepEqual(f.get('b').toArray(), [1.5]);
    assert.deepEqual(f.get('c').toArray(), [7, 8, 9]);
  });
  f.close();
  for (const t of Object.values(ts)) t.dispose();
});

test('non-contiguous tensors are written through a contiguous copy', () => {
  const base = tensor(Array.from({ length: 24 }, (_, i) => i), [4, 6], 'float32');
  const tr = transpose(base, 0, 1);
  const nar = narrow(base, 1, 2, 3);
  const path = join(dir, 'views.safetensors');
  saveSafetensors(path, new Map([['tr', tr], ['nar', nar]]));
  const f = openSafetensors(path);
  const expectTr: number[] = [];
  for (let j = 0; j < 6; j++) for (let i = 0; i < 4; i++) expectTr.push(i * 6 + j);
  tidy(() => {
    assert.deepEqual(f.get('tr').toArray(), expectTr);
    assert.deepEqual(f.get('nar').toArray(), [2, 3, 4, 8, 9, 10, 14, 15, 16, 20, 21, 22]);
  });
  f.close();
  for (const t of [tr, nar, base]) t.dispose();
});

test('tensors keep the mapping alive after close; the last dispose unmaps', () => {
  const path = join(dir, 'life.safetensors');
  const src = { w: tensor([1, 2, 3, 4], [2, 2], 'float32') };
  saveSafetensors(path, src);
  src.w.dispose();
  const start = mmapStats();
  const f = openSafetensors(path);
  const a = f.get('w');
  const b = f.get('w');
  f.close();
  f.close();
  assert.throws(() => f.get('w'), (e: Error) => e instanceof SafetensorsError && /get\('w'\) after close/.test(e.message) && e.message.includes(path));
  assert.deepEqual(a.toArray(), [1, 2, 3, 4]);
  const view = a.data<Float32Array>();
  a.dispose();
  assert.equal(view.length, 0, 'a typed array kept past dispose is detached, not stale');
  assert.equal(mmapStats().mappings, start.mappings + 1, 'b still holds the mapping');
  assert.deepEqual(b.toArray(), [1, 2, 3, 4]);
  b.dispose();
  assert.equal(mmapStats().mappedBytes, start.mappedBytes);
  assert.equal(mmapStats().mappings, start.mappings);
});

test('tidy disposes mapped tensors like any other', () => {
  const path = join(dir, 'life.safetensors');
  const start = mmapStats().mappings;
  const f = openSafetensors(path);
  tidy(() => {
    f.get('w');
    f.get('w');
  });
  f.close();
  assert.equal(mmapStats().mappings, start);
});

test('opening and closing a file 200 times leaves mapped and allocated bytes at the start value', () => {
  const path = join(dir, 'all.safetensors');
  const mapped = mmapStats();
  const alloc = nativeMemory().bytes;
  for (let i = 0; i < 200; i++) {
    const f = openSafetensors(path);
    const t = f.get(f.tensors[i % f.tensors.length].name);
    const c = f.get(f.tensors[0].name, { copy: true });
    if (i % 2) t.dispose();
    f.close();
    if (!(i % 2)) t.dispose();
    c.dispose();
  }
  assert.equal(mmapStats().mappedBytes, mapped.mappedBytes);
  assert.equal(mmapStats().mappings, mapped.mappings);
  assert.equal(nativeMemory().bytes, alloc);
});

test('get(name, {copy: true}) gives a writable tensor in native memory; the file stays intact', () => {
  const path = join(dir, 'life.safetensors');
  const before = readFileSync(path);
  const f = openSafetensors(path);
  const c = f.get('w', { copy: true });
  assert.equal(c.storage.ownership, 'native');
  c.data<Float32Array>()[0] = 42;
  const v = f.get('w');
  assert.deepEqual(v.toArray(), [1, 2, 3, 4]);
  // A stray write into a mapped tensor is invalid, but with the copy-on-write mapping it cannot reach the file.
  v.data<Float32Array>()[1] = -1;
  f.close();
  c.dispose();
  v.dispose();
  assert.ok(readFileSync(path).equals(before));
});

test('a tensor at an offset not aligned to its element size is copied into aligned native memory', () => {
  // U8 [3] first, so the F32 tensor starts 3 bytes into the data section.
  const data = Buffer.alloc(3 + 8);
  data.set([9, 8, 7], 0);
  data.writeFloatLE(1.25, 3);
  data.writeFloatLE(-2.5, 7);
  const path = craftFile(join(dir, 'unaligned.safetensors'), {
    a: { dtype: 'U8', shape: [3], data_offsets: [0, 3] },
    b: { dtype: 'F32', shape: [2], data_offsets: [3, 11] },
  }, data);
  const f = openSafetensors(path);
  assert.notEqual(f.info('b').fileOffset % 4, 0, 'the test needs an unaligned offset');
  const b = f.get('b');
  assert.equal(b.storage.ownership, 'native');
  assert.deepEqual(b.toArray(), [1.25, -2.5]);
  const a = f.get('a');
  assert.equal(a.storage.ownership, 'external');
  assert.deepEqual(a.toArray(), [9, 8, 7]);
  f.close();
  a.dispose();
  b.dispose();
});

test('BOOL reads as uint8; I16 and F8 are listed but get() refuses them by name', () => {
  const path = craftFile(join(dir, 'kinds.safetensors'), {
    flags: { dtype: 'BOOL', shape: [4], data_offsets: [0, 4] },
    s: { dtype: 'I16', shape: [2], data_offsets: [4, 8] },
    q: { dtype: 'F8_E4M3', shape: [2], data_offsets: [8, 10] },
  }, Buffer.from([1, 0, 0, 1, 1, 0, 2, 0, 3, 4]));
  const f = openSafetensors(path);
  assert.equal(f.info('flags').dtype, 'uint8');
  assert.equal(f.info('flags').fileDtype, 'BOOL');
  const flags = f.get('flags');
  assert.deepEqual(flags.toArray(), [1, 0, 0, 1]);
  assert.equal(f.info('s').dtype, null);
  assert.throws(() => f.get('s'), (e: Error) => e instanceof SafetensorsError && /tensor 's' has dtype I16, which seedvl tensors cannot hold/.test(e.message) && e.message.includes(path));
  assert.throws(() => f.get('q'), /tensor 'q' has dtype F8_E4M3/);
  assert.throws(() => f.get('nope'), (e: Error) => /no tensor 'nope'/.test(e.message) && e.message.includes(path));
  f.close();
  flags.dispose();
});

test('a failure mid-write leaves the previous file intact and no temp file behind', () => {
  const path = join(dir, 'atomic.safetensors');
  const good = { a: tensor([1, 2, 3], [3], 'float32') };
  saveSafetensors(path, good);
  const before = readFileSync(path);
  const first = tensor([5, 6, 7, 8], [4], 'float64'); // written first (8-byte dtype)
  const bomb = tensor([1, 2], [2], 'float32');
  let written = false;
  // The tensor's bytes are unreachable once serialisation starts: it throws mid-write.
  Object.defineProperty(bomb, 'storage', { get() { written = true; throw new Error('boom: storage lost during write'); } });
  assert.throws(() => saveSafetensors(path, { first, zbomb: bomb }), /boom/);
  assert.ok(written, 'the failure happened during serialisation');
  assert.ok(readFileSync(path).equals(before), 'previous file intact');
  assert.deepEqual(readdirSync(dir).filter((n) => n.includes('.tmp-')), [], 'temp file removed');
  const f = openSafetensors(path);
  assert.deepEqual(f.names(), ['a']);
  f.close();
  good.a.dispose();
  first.dispose();
});

test('saveSafetensors rejects bad input by name before writing anything', () => {
  const path = join(dir, 'bad-input.safetensors');
  const t = tensor([1], [1]);
  assert.throws(() => saveSafetensors(path, { __metadata__: t }), /'__metadata__' is reserved/);
  assert.throws(() => saveSafetensors(path, { '': t }), /non-empty strings/);
  assert.throws(() => saveSafetensors(path, { x: 3 as unknown as Tensor }), /'x' is not a Tensor/);
  assert.throws(() => saveSafetensors(path, { x: t }, { n: 3 as unknown as string }), /metadata\['n'\] must be a string/);
  const gone = tensor([1], [1]);
  gone.dispose();
  assert.throws(() => saveSafetensors(path, { g: gone }), /tensor 'g' \[1\] is disposed/);
  assert.deepEqual(readdirSync(dir).filter((n) => n.startsWith('bad-input')), []);
  t.dispose();
});

test('names that are awkward in JSON or JS objects survive a round trip', () => {
  const path = join(dir, 'names.safetensors');
  const names = ['__proto__', '0', 'a.b["c"]', 'ünï\u00e7ødé', 'constructor'];
  const m = new Map(names.map((n, i) => [n, tensor([i], [1], 'int32')] as [string, Tensor]));
  saveSafetensors(path, m);
  const f = openSafetensors(path);
  assert.deepEqual(f.names().sort(), [...names].sort());
  for (const [i, n] of names.entries()) {
    const t = f.get(n);
    assert.deepEqual(t.toArray(), [i], n);
    t.dispose();
  }
  f.close();
  for (const t of m.values()) t.dispose();
});

test('the readonly-pages option maps PROT_READ only and still reads', () => {
  const path = join(dir, 'life.safetensors');
  const f = openSafetensors(path, { readonlyPages: true });
  const t = f.get('w');
  assert.deepEqual(t.toArray(), [1, 2, 3, 4]);
  t.dispose();
  f.close();
});
