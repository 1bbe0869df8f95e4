/** Native mapping kernels and the ref-counted MappedFile owner. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync, readFileSync, chmodSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { native, nativeMemory } from '../../src/tensor/index.ts';
import { MappedFile, mmapStats } from '../../src/io/mapped_file.ts';
import { tempDir } from './_helpers.ts';

interface Mmap {
  mmapFile(path: string, readonly?: boolean): ArrayBuffer;
  mmapSlice(map: ArrayBuffer, off: number, len: number): ArrayBuffer;
  mmapDetach(slice: ArrayBuffer): void;
  munmap(map: ArrayBuffer, slices?: ArrayBuffer[]): void;
}
const N = native as unknown as Mmap;
const dir = tempDir('mmap');
const text = 'safetensors mmap test: 0123456789abcdef';
const file = join(dir, 'a.bin');
writeFileSync(file, text);

test('mmapFile maps the whole file; munmap detaches and unmaps at once', () => {
  const before = mmapStats();
  const map = N.mmapFile(file);
  assert.equal(map.byteLength, text.length);
  assert.equal(Buffer.from(map).toString(), text);
  assert.equal(mmapStats().mappedBytes, before.mappedBytes + text.length);
  assert.equal(mmapStats().mappings, before.mappings + 1);
  const view = new Uint8Array(map);
  N.munmap(map);
  assert.equal(map.byteLength, 0, 'buffer detached');
  assert.equal(view.length, 0, 'existing views see nothing');
  assert.equal(mmapStats().mappedBytes, before.mappedBytes);
  N.munmap(map); // second call: no-op
  assert.equal(mmapStats().mappings, before.mappings);
});

test('mapped bytes are counted apart from allocated bytes', () => {
  const alloc = nativeMemory().bytes;
  const map = N.mmapFile(file);
  assert.equal(nativeMemory().bytes, alloc);
  N.munmap(map);
});

test('errors name the path and the reason', () => {
  assert.throws(() => N.mmapFile(join(dir, 'missing.bin')), (e: Error) => e.message.includes('missing.bin') && e.message.includes('ENOENT'));
  const sub = join(dir, 'sub');
  mkdirSync(sub);
  assert.throws(() => N.mmapFile(sub), (e: Error) => e.message.includes(sub) && /not a regular file/.test(e.message));
  const empty = join(dir, 'empty.bin');
  writeFileSync(empty, '');
  assert.throws(() => N.mmapFile(empty), (e: Error) => e.message.includes(empty) && /empty/.test(e.message));
  assert.throws(() => N.mmapFile(42 as unknown as string), /mmapFile: argument 'path' must be a string/);
});

test('EACCES names the path (skipped as root, which bypasses permissions)', { skip: process.getuid?.() === 0 }, () => {
  const p = join(dir, 'noperm.bin');
  writeFileSync(p, 'x');
  chmodSync(p, 0);
  assert.throws(() => N.mmapFile(p), (e: Error) => e.message.includes(p) && e.message.includes('EACCES'));
});

test('a write into the default (copy-on-write) mapping never reaches the file', () => {
  const map = N.mmapFile(file);
  new Uint8Array(map)[0] = 'S'.charCodeAt(0);
  assert.equal(String.fromCharCode(new Uint8Array(map)[0]), 'S', 'this process sees its private copy');
  N.munmap(map);
  assert.equal(readFileSync(file, 'utf8'), text, 'file unchanged');
  const again = N.mmapFile(file);
  assert.equal(Buffer.from(again).toString(), text, 'a new mapping sees the file');
  N.munmap(again);
});

test('slices view ranges; munmap detaches every slice it is given', () => {
  const map = N.mmapFile(file, true);
  const a = N.mmapSlice(map, 0, 11);
  const b = N.mmapSlice(map, 12, 4);
  const b2 = N.mmapSlice(map, 12, 4); // two buffers over the same bytes are fine
  assert.equal(Buffer.from(a).toString(), 'safetensors');
  assert.equal(Buffer.from(b).toString(), 'mmap');
  assert.equal(Buffer.from(b2).toString(), 'mmap');
  N.mmapDetach(b2);
  assert.equal(b2.byteLength, 0);
  assert.throws(() => N.mmapSlice(map, 30, 100), /mmapSlice: range \[30, 130\) outside the 39-byte mapping/);
  assert.throws(() => N.mmapSlice(map, 0, map.byteLength), /cannot cover the whole mapping/);
  assert.throws(() => N.munmap(a), /munmap: buffer is not a mapping from mmapFile/);
  assert.throws(() => N.mmapDetach(new ArrayBuffer(8)), /mmapDetach: buffer is not a slice of a live mapping/);
  const other = N.mmapFile(file);
  const foreign = N.mmapSlice(other, 1, 2);
  assert.throws(() => N.munmap(map, [a, foreign]), /slices\[1\] does not lie inside this mapping/);
  assert.equal(map.byteLength, 39, 'a rejected munmap changes nothing');
  N.munmap(map, [a, b]);
  assert.equal(a.byteLength, 0);
  assert.equal(b.byteLength, 0);
  assert.throws(() => N.mmapSlice(map, 0, 1), /already unmapped/);
  N.munmap(other, [foreign]);
});

test('MappedFile unmaps only when closed and every slice is released', () => {
  const start = mmapStats().mappedBytes;
  const m = new MappedFile(file);
  const s1 = m.slice(0, 4);
  const s2 = m.slice(4, 4);
  m.close();
  assert.equal(m.isUnmapped, false);
  assert.throws(() => m.slice(0, 1), /file handle is closed/);
  s1.release();
  s1.release(); // idempotent
  assert.equal(s1.buffer.byteLength, 0, 'a released slice is detached');
  assert.equal(Buffer.from(s2.buffer).toString(), 'tens');
  assert.equal(m.isUnmapped, false);
  s2.release();
  assert.equal(m.isUnmapped, true);
  assert.equal(mmapStats().mappedBytes, start);
});

test('200 open/close cycles return mapped and allocated bytes to the start', () => {
  const mapped = mmapStats();
  const alloc = nativeMemory();
  for (let i = 0; i < 200; i++) {
    const m = new MappedFile(file);
    const s = m.slice(i % 10, 8);
    if (i % 2) s.release();
    m.close();
    if (!(i % 2)) s.release();
  }
  assert.equal(mmapStats().mappedBytes, mapped.mappedBytes);
  assert.equal(mmapStats().mappings, mapped.mappings);
  assert.equal(nativeMemory().bytes, alloc.bytes);
});
