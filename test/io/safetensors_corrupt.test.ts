/** Corrupt and hostile safetensors files: each fails with a SafetensorsError naming the problem, never a crash. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tensor, tidy } from '../../src/tensor/index.ts';
import { openSafetensors, saveSafetensors, mmapStats, SafetensorsError } from '../../src/io/safetensors.ts';
import { parseSafetensorsHeader, MAX_HEADER_BYTES } from '../../src/io/safetensors_header.ts';
import { rng } from '../helpers/gradcheck.ts';
import { tempDir, craftFile } from './_helpers.ts';

const dir = tempDir('corrupt');
let n = 0;
const fresh = (): string => join(dir, `c${n++}.safetensors`);

/** Opening `path` must throw a SafetensorsError whose message names the file and matches `re` (and `tensor`, if given), leaking no mapping. */
function expectError(path: string, re: RegExp, tensorName?: string): void {
  const before = mmapStats();
  assert.throws(
    () => openSafetensors(path),
    (e: unknown) => {
      assert.ok(e instanceof SafetensorsError, `expected SafetensorsError, got ${String(e)}`);
      assert.ok(e.message.includes(path), `message should name the file: ${e.message}`);
      assert.match(e.message, re);
      assert.equal(e.file, path);
      if (tensorName !== undefined) {
        assert.equal(e.tensor, tensorName);
        assert.ok(e.message.includes(`'${tensorName}'`), `message should name the tensor: ${e.message}`);
      }
      return true;
    },
  );
  assert.equal(mmapStats().mappings, before.mappings, 'a failed open must unmap');
}

const ok = { w: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } };

test('file shorter than the 8-byte length field', () => {
  expectError(craftFile(fresh(), ok, new Uint8Array(8), { truncateTo: 5 }), /file is 5 bytes, too small for the 8-byte header length/);
});

test('empty file', () => {
  const p = fresh();
  writeFileSync(p, '');
  expectError(p, /empty/);
});

test('header length larger than the file', () => {
  expectError(craftFile(fresh(), ok, new Uint8Array(8), { lengthOverride: 10_000n }), /header length 10000 is larger than the file allows \(\d+ bytes − 8\)/);
  expectError(craftFile(fresh(), ok, new Uint8Array(8), { lengthOverride: 2n ** 63n }), /header length 9223372036854775808 is larger than the file/);
});

test('header length over the 100 MB limit (checked before reading it)', () => {
  const head = new Uint8Array(16);
  new DataView(head.buffer).setBigUint64(0, BigInt(MAX_HEADER_BYTES + 8), true);
  assert.throws(() => parseSafetensorsHeader(head, 4 * MAX_HEADER_BYTES, 'big.safetensors'), /big\.safetensors: header length 100000008 exceeds the 100000000-byte limit/);
});

test('bad JSON, bad UTF-8, wrong JSON type', () => {
  expectError(craftFile(fresh(), '{"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]'), /header is not valid JSON/);
  const p = fresh();
  const bytes = Buffer.alloc(16);
  bytes.writeBigUInt64LE(8n);
  bytes.set([0x7b, 0xff, 0xfe, 0x7d, 0x20, 0x20, 0x20, 0x20], 8);
  writeFileSync(p, bytes);
  expectError(p, /header \(bytes 8\.\.16\) is not valid UTF-8/);
  expectError(craftFile(fresh(), '[1, 2, 3]'), /header must be a JSON object, got array/);
  expectError(craftFile(fresh(), 'null    '), /header must be a JSON object, got object/);
});

test('truncated data section: offsets past the end of the file', () => {
  const good = fresh();
  tidy(() => saveSafetensors(good, { a: tensor([1, 2, 3, 4], [4], 'float32'), b: tensor([5, 6], [2], 'float32') }));
  const full = readFileSync(good);
  const cut = fresh();
  writeFileSync(cut, full.subarray(0, full.length - 3));
  expectError(cut, /tensor '\w': data_offsets \[\d+, 24\] run past the end of the data section \(21 bytes .*truncated\?\)/);
  expectError(craftFile(fresh(), { w: { dtype: 'F32', shape: [4], data_offsets: [0, 16] } }, new Uint8Array(8)), /data_offsets \[0, 16\] run past the end of the data section \(8 bytes/, 'w');
});

test('overlapping tensors', () => {
  const p = craftFile(fresh(), {
    a: { dtype: 'F32', shape: [4], data_offsets: [0, 16] },
    b: { dtype: 'F32', shape: [2], data_offsets: [8, 16] },
  }, new Uint8Array(16));
  expectError(p, /tensors 'a' data_offsets \[0, 16\] and 'b' data_offsets \[8, 16\] overlap/);
  // Touching ranges and empty tensors inside others are fine.
  const q = craftFile(fresh(), {
    a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
    b: { dtype: 'F32', shape: [2], data_offsets: [8, 16] },
    e: { dtype: 'F32', shape: [0], data_offsets: [4, 4] },
  }, new Uint8Array(16));
  openSafetensors(q).close();
});

test('unknown dtype', () => {
  expectError(craftFile(fresh(), { w: { dtype: 'F33', shape: [2], data_offsets: [0, 8] } }, new Uint8Array(8)), /tensor 'w': unknown dtype 'F33'/, 'w');
  expectError(craftFile(fresh(), { w: { dtype: 4, shape: [2], data_offsets: [0, 8] } }, new Uint8Array(8)), /dtype must be a string/, 'w');
});

test('size does not match shape × element size', () => {
  expectError(
    craftFile(fresh(), { w: { dtype: 'F32', shape: [2, 3], data_offsets: [0, 20] } }, new Uint8Array(24)),
    /tensor 'w': shape \[2,3\] F32 needs 24 bytes but data_offsets \[0, 20\] hold 20/, 'w',
  );
});

test('malformed shapes and offsets', () => {
  const cases: [unknown, RegExp][] = [
    [{ dtype: 'F32', shape: [-2], data_offsets: [0, 8] }, /shape must be an array of non-negative integers/],
    [{ dtype: 'F32', shape: [1.5], data_offsets: [0, 8] }, /shape must be an array of non-negative integers/],
    [{ dtype: 'F32', shape: '2', data_offsets: [0, 8] }, /shape must be an array/],
    [{ dtype: 'F32', shape: [2], data_offsets: [8, 0] }, /data_offsets \[8, 0\] end before begin/],
    [{ dtype: 'F32', shape: [2], data_offsets: [0] }, /data_offsets must be \[begin, end\]/],
    [{ dtype: 'F32', shape: [2] }, /data_offsets must be \[begin, end\]/],
    [{ dtype: 'F32', shape: [2], data_offsets: [0, 2 ** 60] }, /data_offsets must be \[begin, end\] non-negative integers/],
    [{ dtype: 'F32', shape: [2 ** 40, 2 ** 40], data_offsets: [0, 8] }, /shape \[1099511627776,1099511627776\] is too large/],
    ['F32', /entry must be an object/],
  ];
  for (const [entry, re] of cases) expectError(craftFile(fresh(), { w: entry }, new Uint8Array(8)), re, 'w');
});

test('metadata must be an object of strings', () => {
  expectError(craftFile(fresh(), { __metadata__: { format: 1 }, ...ok }, new Uint8Array(8)), /__metadata__\['format'\] must be a string/);
  expectError(craftFile(fresh(), { __metadata__: ['pt'], ...ok }, new Uint8Array(8)), /__metadata__ must be an object of strings/);
});

test('fuzz: flipped header bytes and truncations throw SafetensorsError or open cleanly, never anything else', () => {
  const good = fresh();
  tidy(() => saveSafetensors(good, {
    a: tensor([1, 2, 3, 4], [2, 2], 'float32'), b: tensor([1, 2, 3], [3], 'bfloat16'), c: tensor([7], [1], 'int64'),
  }, { format: 'pt' }));
  const bytes = readFileSync(good);
  const hdrEnd = 8 + Number(bytes.readBigUInt64LE(0));
  const r = rng(1234);
  const p = join(dir, 'fuzz.safetensors');
  let opened = 0;
  let rejected = 0;
  const start = mmapStats().mappings;
  for (let i = 0; i < 300; i++) {
    const m = Buffer.from(bytes);
    if (i === 0) {
      writeFileSync(p, m); // the unmodified file must open
    } else if (i % 3 === 2) {
      writeFileSync(p, m.subarray(0, Math.floor(r() * m.length)));
    } else {
      for (let k = 0; k < 1 + (i % 4); k++) m[Math.floor(r() * hdrEnd)] = Math.floor(r() * 256);
      writeFileSync(p, m);
    }
    try {
      const f = openSafetensors(p);
      // Whatever opened must be readable within bounds.
      for (const e of f.tensors) {
        if (e.dtype) f.get(e.name).dispose();
      }
      f.close();
      opened++;
    } catch (e) {
      assert.ok(e instanceof SafetensorsError, `mutation ${i}: ${String(e)}`);
      rejected++;
    }
  }
  assert.ok(rejected > 100 && opened >= 1, `opened ${opened}, rejected ${rejected}`);
  assert.equal(mmapStats().mappings, start);
});
