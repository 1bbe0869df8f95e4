// Decoding with ffmpeg on videos generated at test time from lavfi sources.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { writeFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadVideo, planVideo, probeVideo, loadFrameList, selectExpression } from '../../src/processing/video.ts';
import { ffmpegAvailable } from '../../src/processing/ffmpeg.ts';
import { MediaError, type MediaErrorCode } from '../../src/processing/errors.ts';
import { makeScene, tempDir } from './_media.ts';

const hasFfmpeg = await ffmpegAvailable();
const skip = hasFfmpeg ? false : 'ffmpeg/ffprobe not installed (Debian package "ffmpeg")';
const tmp = tempDir('seedvl-video-test-');
after(() => tmp.cleanup());

function gen(name: string, lavfi: string, codecArgs: string[]): string {
  const out = join(tmp.dir, name);
  execFileSync('ffmpeg', ['-v', 'error', '-y', '-f', 'lavfi', '-i', lavfi, ...codecArgs, out]);
  return out;
}

/** A lossless video whose frame k has red = k mod 256 and green = k div 256 everywhere. */
function indexVideo(name: string, w: number, h: number, rate: number | string, seconds: number): string {
  return gen(name, `nullsrc=s=${w}x${h}:r=${rate}:d=${seconds},format=gbrp,geq=r='mod(N,256)':g='floor(N/256)':b=128`, ['-c:v', 'ffv1']);
}

function frameIndexOf(img: { data: Uint8Array }): number {
  return img.data[0]! + 256 * img.data[1]!;
}

async function rejectsWith(p: Promise<unknown>, code: MediaErrorCode, includes?: string) {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof MediaError, String(e));
    assert.equal(e.code, code, e.message);
    if (includes) assert.ok(e.message.includes(includes), e.message);
    return true;
  });
}

let short = '';
before(() => {
  if (hasFfmpeg) short = indexVideo('short.mkv', 64, 48, 25, 10);
});

test('10 s at 25 fps: probe, then exactly the planned frames are decoded', { skip }, async () => {
  const probe = await probeVideo(short);
  assert.deepEqual([probe.width, probe.height, probe.totalFrames, probe.nativeFps], [64, 48, 250, 25]);
  assert.ok(Math.abs(probe.duration - 10) < 0.05, String(probe.duration));
  const clip = await loadVideo(short);
  assert.deepEqual(clip.plan.frames.map((f) => f.index), [0, 17, 33, 50, 66, 83, 100, 116, 133, 149, 166, 183, 199, 216, 232, 249]);
  assert.deepEqual(clip.frames.map((f) => frameIndexOf(f.image)), clip.plan.frames.map((f) => f.index));
  assert.equal(clip.frames[1]!.timestamp, '[0.7 second]');
  // 48x64 → 56x56 at level 640.
  assert.deepEqual([clip.frames[0]!.image.width, clip.frames[0]!.image.height], [56, 56]);
  assert.equal(clip.plan.tokensPerFrame, 4);
});

test('29.97 fps mp4 at fps 2: fractional rate, timestamps from idx / fps', { skip }, async () => {
  const mp4 = gen('ntsc.mp4', 'testsrc=s=320x240:r=30000/1001:d=20', ['-c:v', 'mpeg4', '-q:v', '20']);
  const { probe, plan } = await planVideo(mp4, { task: 'fine_grained' });
  assert.equal(probe.totalFrames, 600);
  assert.ok(Math.abs(probe.nativeFps - 30000 / 1001) < 1e-9);
  // ceil(600 / 29.97 · 2) = ceil(40.04) = 41 frames; step 599/40 = 14.975.
  assert.equal(plan.frames.length, 41);
  assert.deepEqual(plan.frames.slice(0, 5).map((f) => f.index), [0, 15, 30, 45, 60]);
  assert.deepEqual(plan.frames.slice(0, 5).map((f) => f.timestamp), ['[0.0 second]', '[0.5 second]', '[1.0 second]', '[1.5 second]', '[2.0 second]']);
  assert.equal(plan.frames[40]!.timestamp, '[20.0 second]');
});

test('long video (700 s at 1 fps) forces 128 tokens and uniform subsampling to 640 frames', { skip }, async () => {
  const long = indexVideo('long.mkv', 64, 48, 1, 700);
  const clip = await loadVideo(long);
  assert.equal(clip.probe.totalFrames, 700); // Matroska: counted from packets
  assert.equal(clip.plan.level, 128);
  assert.equal(clip.plan.subsampled, true);
  assert.equal(clip.frames.length, 640);
  assert.deepEqual(clip.frames.map((f) => frameIndexOf(f.image)), clip.plan.frames.map((f) => f.index));
  assert.equal(clip.frames[6]!.index, 7);
  assert.equal(clip.frames[639]!.timestamp, '[699.0 second]');
});

test('sources: bytes and data: URL are accepted like paths', { skip }, async () => {
  const bytes = readFileSync(short);
  const a = await planVideo(bytes);
  const b = await planVideo(`data:video/x-matroska;base64,${bytes.toString('base64')}`);
  assert.equal(a.plan.frames.length, 16);
  assert.deepEqual(a.plan, b.plan);
});

test('bad videos: no video stream, corrupt file, missing file, network off, ffmpeg missing', { skip }, async () => {
  const wav = gen('tone.wav', 'sine=f=440:d=1', []);
  await rejectsWith(probeVideo(wav), 'no_video_stream', 'tone.wav');
  const junk = join(tmp.dir, 'junk.mp4');
  writeFileSync(junk, Buffer.from('definitely not a video'.repeat(10)));
  await rejectsWith(probeVideo(junk), 'decode_failed', 'junk.mp4');
  const truncated = join(tmp.dir, 'truncated.mkv');
  writeFileSync(truncated, readFileSync(short).subarray(0, 300));
  await assert.rejects(loadVideo(truncated), (e: unknown) => e instanceof MediaError);
  await rejectsWith(probeVideo(join(tmp.dir, 'nope.mp4')), 'not_found');
  await rejectsWith(planVideo('https://example.invalid/v.mp4'), 'network_disabled');
  const saved = process.env['SEEDVL_FFPROBE'];
  process.env['SEEDVL_FFPROBE'] = join(tmp.dir, 'no-such-ffprobe');
  try {
    await rejectsWith(probeVideo(short), 'ffmpeg_missing', 'apt-get install ffmpeg');
  } finally {
    if (saved === undefined) delete process.env['SEEDVL_FFPROBE'];
    else process.env['SEEDVL_FFPROBE'] = saved;
  }
});

test('a list of frames with timestamps gets the same resizing and timestamp text', () => {
  const frames = [0, 0.5, 1.25, 2].map((t, i) => ({ t, image: makeScene(100, 60, [], [i * 50, 0, 0]) }));
  const clip = loadFrameList({ frames });
  assert.deepEqual(clip.frames.map((f) => f.timestamp), ['[0.0 second]', '[0.5 second]', '[1.2 second]', '[2.0 second]']);
  assert.deepEqual([clip.frames[0]!.image.width, clip.frames[0]!.image.height], [112, 56]);
  assert.equal(clip.frames[3]!.image.data[0], 150);
});

test('select expression: runs become between(), terms form a balanced tree', () => {
  assert.equal(selectExpression([4]), 'eq(n\\,4)');
  assert.equal(selectExpression([1, 2, 3, 7]), '(between(n\\,1\\,3)+eq(n\\,7))');
  const big = selectExpression(Array.from({ length: 640 }, (_, i) => i * 2));
  let depth = 0, max = 0;
  for (const ch of big) (ch === '(' && (depth++, (max = Math.max(max, depth))), ch === ')' && depth--);
  assert.ok(max <= 12 + 640 / 640, `nesting depth ${max}`); // log2(640) ≈ 10 plus function parentheses
});
