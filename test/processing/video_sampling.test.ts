// Pure sampling arithmetic against hand-computed expectations (spec §4.3).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatTimestamp, planFrameList, planVideoSampling, fpsForTask } from '../../src/processing/video_sampling.ts';
import { formatRound1, numpyLinspace, roundHalfEven } from '../../src/processing/numeric.ts';
import { MediaError } from '../../src/processing/errors.ts';

test('Python rounding semantics: round-half-even and round(t, 1) on exact binary ties', () => {
  assert.deepEqual([0.5, 1.5, 2.5, -1.5, 2.4999, 83.00000000000001].map(roundHalfEven), [0, 2, 2, -2, 2, 83]);
  assert.equal(formatRound1(0.25), '0.2'); // toFixed(1) would say 0.3
  assert.equal(formatRound1(0.75), '0.8');
  assert.equal(formatRound1(1.25), '1.2');
  assert.equal(formatRound1(0.35), '0.3'); // 0.35 is stored below .35
  assert.equal(formatRound1(2), '2.0');
  assert.equal(formatRound1(12.46), '12.5');
  assert.equal(formatTimestamp(0), '[0.0 second]');
  assert.deepEqual(numpyLinspace(0, 1, 1), [0]);
  assert.deepEqual(numpyLinspace(0, 249, 16).slice(-1), [249]);
});

test('fps by task: 1 general, 2 fine-grained, 5 counting and motion', () => {
  assert.deepEqual([fpsForTask(), fpsForTask('fine_grained'), fpsForTask('counting'), fpsForTask('motion')], [1, 2, 5, 5]);
});

test('10 s at 25 fps, 1 fps: the 16-frame minimum oversamples; level 640', () => {
  const p = planVideoSampling(250, 25, 320, 240);
  assert.deepEqual(p.frames.map((f) => f.index), [0, 17, 33, 50, 66, 83, 100, 116, 133, 149, 166, 183, 199, 216, 232, 249]);
  assert.deepEqual(p.frames.map((f) => f.timestamp), [
    '[0.0 second]', '[0.7 second]', '[1.3 second]', '[2.0 second]', '[2.6 second]', '[3.3 second]', '[4.0 second]', '[4.6 second]',
    '[5.3 second]', '[6.0 second]', '[6.6 second]', '[7.3 second]', '[8.0 second]', '[8.6 second]', '[9.3 second]', '[10.0 second]',
  ]);
  assert.equal(p.level, 640);
  // 240x320 → round(8.57)=9, round(11.43)=11 → 252x308, 99 tokens (≤ 640·784 pixels).
  assert.deepEqual(p.resized, { height: 252, width: 308 });
  assert.equal(p.tokensPerFrame, 99);
  assert.equal(p.totalTokens, 16 * 99);
  assert.equal(p.subsampled, false);
});

test('a timestamp that is an exact binary tie prints half-to-even ([0.2 second] at 24 fps)', () => {
  const p = planVideoSampling(48, 24, 64, 64);
  assert.equal(p.frames[2]!.index, 6);
  assert.equal(p.frames[2]!.timestamp, '[0.2 second]');
});

test('level choice: 500 frames fall to 160 tokens, 640x480 frames resize to 280x392', () => {
  const p = planVideoSampling(500, 5, 640, 480, { task: 'counting' });
  assert.equal(p.frames.length, 500);
  assert.equal(p.level, 160); // 500·256 = 128000 > 81920 ≥ 500·160 = 80000
  assert.deepEqual(p.resized, { height: 280, width: 392 });
  assert.equal(p.tokensPerFrame, 140);
  assert.equal(p.frames[499]!.timestamp, '[99.8 second]');
});

test('long video: 128 tokens still too much, 700 frames subsample uniformly to 640', () => {
  const p = planVideoSampling(700, 1, 64, 48);
  assert.equal(p.level, 128);
  assert.equal(p.subsampled, true);
  assert.equal(p.frames.length, 640);
  // round(linspace(0, 699, 640)), step 699/639 = 1.09390: 0,1,2,3,4,5,7(6.56),8(7.66),9(8.75),10(9.85)
  assert.deepEqual(p.frames.slice(0, 10).map((f) => f.index), [0, 1, 2, 3, 4, 5, 7, 8, 9, 10]);
  assert.equal(p.frames[639]!.index, 699);
  assert.ok(p.totalTokens <= 81920);
  // Boundary: exactly 640 frames fit at 128 tokens (640·128 = 81920) and are all kept.
  const edge = planVideoSampling(640, 1, 64, 48);
  assert.equal(edge.level, 128);
  assert.equal(edge.frames.length, 640);
  assert.equal(edge.subsampled, false);
});

test('user fps, minimum frames capped by the frame count, bad values rejected', () => {
  const p = planVideoSampling(400, 10, 64, 48, { fps: 2 });
  assert.equal(p.frames.length, 80);
  assert.deepEqual(p.frames.slice(0, 11).map((f) => f.index), [0, 5, 10, 15, 20, 25, 30, 35, 40, 45, 51]);
  assert.equal(planVideoSampling(5, 25, 64, 48).frames.length, 5); // fewer than 16 frames exist
  assert.throws(() => planVideoSampling(0, 25, 64, 48), MediaError);
  assert.throws(() => planVideoSampling(10, 0, 64, 48), MediaError);
  assert.throws(() => planVideoSampling(10, 25, 64, 48, { fps: -1 }), MediaError);
});

test('frame lists keep every frame unless the budget forces uniform dropping', () => {
  const ts = Array.from({ length: 20 }, (_, i) => i * 0.5);
  const p = planFrameList(ts, 640, 480);
  assert.equal(p.frames.length, 20);
  assert.equal(p.frames[3]!.timestamp, '[1.5 second]');
  const many = planFrameList(Array.from({ length: 1000 }, (_, i) => i), 64, 48);
  assert.equal(many.frames.length, 640);
  assert.throws(() => planFrameList([1, 0.5], 64, 48), /must not decrease/);
  assert.throws(() => planFrameList([], 64, 48), MediaError);
});
