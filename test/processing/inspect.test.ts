import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { inspectCommand } from '../../src/cli/inspect.ts';
import { ffmpegAvailable } from '../../src/processing/ffmpeg.ts';
import { makeScene, rawSharp, tempDir } from './_media.ts';

const tmp = tempDir();
after(() => tmp.cleanup());
const hasFfmpeg = await ffmpegAvailable();

async function run(args: string[]) {
  let out = '';
  let err = '';
  const code = await inspectCommand(args, { out: (s) => (out += s), err: (s) => (err += s) });
  return { code, out, err };
}

test('--help prints usage and exits 0', async () => {
  const r = await run(['--help']);
  assert.equal(r.code, 0);
  assert.match(r.out, /Usage: seedvl inspect/);
  assert.match(r.out, /--max-pixels/);
});

test('image: JSON fields and the human summary', async () => {
  const path = join(tmp.dir, 'wide.png');
  writeFileSync(path, await rawSharp(makeScene(1920, 1080, [])).png().toBuffer());
  const r = await run([path, '--json']);
  assert.equal(r.code, 0, r.err);
  const j = JSON.parse(r.out);
  assert.equal(j.kind, 'image');
  assert.deepEqual(j.original, { width: 1920, height: 1080 });
  // Seed defaults: round(1080/28)=39 → 1092, round(1920/28)=69 → 1932; 39·69 = 2691 tokens ≤ 5120.
  assert.deepEqual(j.resized, { width: 1932, height: 1092 });
  assert.deepEqual(j.grid, { rows: 39, cols: 69 });
  assert.equal(j.tokens, 2691);
  const capped = JSON.parse((await run([path, '--json', '--max-pixels', String(28 * 28 * 100)])).out);
  assert.ok(capped.tokens <= 100);
  assert.equal(capped.tokens, capped.grid.rows * capped.grid.cols);
  const human = await run([path]);
  assert.match(human.out, /tokens: +2691/);
});

test('errors: missing file, bad option values, corrupt file', async () => {
  const missing = await run([join(tmp.dir, 'nope.png')]);
  assert.equal(missing.code, 1);
  assert.match(missing.err, /cannot read file/);
  assert.equal((await run([])).code, 2);
  assert.equal((await run(['x.png', '--fps', 'fast'])).code, 2);
  assert.equal((await run(['x.png', '--bogus'])).code, 2);
  const junk = join(tmp.dir, 'junk.bin');
  writeFileSync(junk, 'garbage'.repeat(50));
  const r = await run([junk, '--json']);
  assert.equal(r.code, 1);
  assert.match(r.err, /error: /);
});

test('video: duration, rates, per-frame list and total tokens', { skip: hasFfmpeg ? false : 'ffmpeg/ffprobe not installed (Debian package "ffmpeg")' }, async () => {
  const path = join(tmp.dir, 'clip.mp4');
  execFileSync('ffmpeg', ['-v', 'error', '-y', '-f', 'lavfi', '-i', 'testsrc=s=320x240:r=25:d=10', '-c:v', 'mpeg4', '-q:v', '20', path]);
  const j = JSON.parse((await run([path, '--json'])).out);
  assert.equal(j.kind, 'video');
  assert.deepEqual(j.original, { width: 320, height: 240 });
  assert.deepEqual(j.resized, { width: 308, height: 252 });
  assert.equal(j.native_fps, 25);
  assert.ok(Math.abs(j.duration - 10) < 0.05);
  assert.equal(j.frames.length, 16);
  assert.deepEqual(j.frames[1], { t: 0.7, index: 17, width: 308, height: 252, tokens: 99 });
  assert.equal(j.tokens, 16 * 99);
  assert.ok(Math.abs(j.sampled_fps - 1.6) < 0.01);
  const fast = JSON.parse((await run([path, '--json', '--fps', '5'])).out);
  assert.equal(fast.frames.length, 50);
  assert.equal(fast.requested_fps, 5);
  const small = JSON.parse((await run([path, '--json', '--max-pixels', String(28 * 28 * 20)])).out);
  assert.ok(small.frames[0].tokens <= 20);
  const human = await run([path]);
  assert.match(human.out, /16 frames/);
});
