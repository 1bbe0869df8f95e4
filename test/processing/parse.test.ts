import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parse3DBoxes, parseBoxes, parsePoints, parseTimeSegments, splitThinking, joinThinking } from '../../src/processing/parse.ts';
import { defaultIntrinsics, projectBox3d } from '../../src/processing/box3d.ts';

const size = { width: 2000, height: 1000 };

test('bbox: one, several, labels, pixels in the original image', () => {
  const r = parseBoxes('The cat <bbox>100 200 300 400</bbox> and the dog<bbox>500 500 999 999</bbox>.', { size });
  assert.equal(r.issues.length, 0);
  assert.deepEqual(r.items.map((b) => b.raw), [[100, 200, 300, 400], [500, 500, 999, 999]]);
  assert.deepEqual(r.items.map((b) => b.label), ['The cat', 'and the dog']);
  assert.deepEqual(r.items[0]!.pixel, { x1: 200, y1: 200, x2: 600, y2: 400 });
  assert.deepEqual(r.items[1]!.pixel, { x1: 1000, y1: 500, x2: 1998, y2: 999 });
});

test('bbox: tolerant of commas, extra spaces and tag spacing; swapped corners are reordered in pixels', () => {
  const r = parseBoxes('< bbox > 10, 20 ,30 40 </bbox><BBOX>300 400 100 200</BBOX>', { size: { width: 1000, height: 1000 } });
  assert.deepEqual(r.items.map((b) => b.raw), [[10, 20, 30, 40], [300, 400, 100, 200]]);
  assert.deepEqual(r.items[1]!.pixel, { x1: 100, y1: 200, x2: 300, y2: 400 });
});

test('bbox/point: malformed tags become issues, valid neighbours survive', () => {
  const r = parseBoxes('<bbox>1 2 3</bbox> <bbox>a b c d</bbox> <bbox>1 2 3 4000</bbox> <bbox>5 6 7 8</bbox> <bbox>9 9');
  assert.deepEqual(r.items.map((b) => b.raw), [[5, 6, 7, 8]]);
  assert.equal(r.issues.length, 4);
  assert.match(r.issues[0]!.reason, /expected 4 numbers/);
  assert.match(r.issues[2]!.reason, /\[0, 1000\]/);
  assert.match(r.issues[3]!.reason, /not closed/);
  const p = parsePoints('<point>500</point><point>-1 3</point><point>250 750</point>', { size });
  assert.deepEqual(p.items.map((x) => x.raw), [[250, 750]]);
  assert.deepEqual(p.items[0]!.pixel, { x: 500, y: 750 });
  assert.equal(p.issues.length, 2);
  assert.deepEqual(parseBoxes('no boxes here'), { items: [], issues: [] });
});

test('points: counting answers list one point per instance', () => {
  const text = 'apple<point>100 100</point>, apple<point>200 120</point>, apple<point>300 140</point>. There are 3 apples.';
  const r = parsePoints(text);
  assert.equal(r.items.length, 3);
  assert.deepEqual(r.items.map((p) => p.label), ['apple', 'apple', 'apple']);
});

test('3dbbox: nine values, projection with the 60° default camera', () => {
  const r = parse3DBoxes('cup <3dbbox>0.43 -0.12 1.60 0.12 0.23 0.18 -0.99 0.21 0.01</3dbbox> <3dbbox>1 2 3</3dbbox>');
  assert.equal(r.items.length, 1);
  assert.equal(r.issues.length, 1);
  const b = r.items[0]!;
  assert.deepEqual(b.center, [0.43, -0.12, 1.6]);
  assert.deepEqual(b.size, [0.12, 0.23, 0.18]);
  assert.equal(b.pitch, -0.99);
  const k = defaultIntrinsics(640, 480);
  assert.deepEqual(k, { fx: 554.26, fy: 415.69, cx: 320, cy: 240 });
  const corners = projectBox3d({ center: [0, 0, 2], size: [1, 1, 1], pitch: 0, yaw: 0, roll: 0 }, k);
  // Unrotated unit cube 2 m ahead: the near face (z = 1.5) spans ±0.5/1.5·fx around the centre.
  const near = corners.filter((c, i) => i % 2 === 0) as { x: number; y: number }[];
  assert.ok(near.every((c) => Math.abs(Math.abs(c.x - 320) - (0.5 / 1.5) * 554.26) < 1e-9));
  const behind = projectBox3d({ center: [0, 0, 0.2], size: [1, 1, 1], pitch: 0, yaw: 0, roll: 0 }, k);
  assert.equal(behind.filter((c) => c === null).length, 4);
});

test('temporal segments: the report formats and common variants', () => {
  const seg = (t: string) => parseTimeSegments(t).items.map((s) => [s.start, s.end]);
  assert.deepEqual(seg('The event happens at 3.2–10.0 seconds.'), [[3.2, 10]]);
  assert.deepEqual(seg('6-8 seconds, 16-22 seconds'), [[6, 8], [16, 22]]);
  assert.deepEqual(seg('0.0–3.21 seconds'), [[0, 3.21]]);
  assert.deepEqual(seg('6-8, 16-22 seconds'), [[6, 8], [16, 22]]);
  assert.deepEqual(seg('from 1.5 to 3 seconds'), [[1.5, 3]]);
  assert.deepEqual(seg('[3.2, 10.0]'), [[3.2, 10]]);
  assert.deepEqual(seg('00:05-01:02'), [[5, 62]]);
  assert.deepEqual(seg('12.5 - 20s'), [[12.5, 20]]);
  assert.deepEqual(seg('3.2-10.0'), [[3.2, 10]]);
  // Not time: page ranges, dates.
  assert.deepEqual(seg('See pages 3-5 of the 2024-05-06 report.'), []);
  const bad = parseTimeSegments('from 10 to 2 seconds');
  assert.deepEqual(bad.items, []);
  assert.match(bad.issues[0]!.reason, /before start/);
});

test('think: split, missing open tag, unclosed block, no block', () => {
  assert.deepEqual(splitThinking('<think>\nstep 1\n</think>\n\nThe answer is 4.'), { reasoning_content: 'step 1', content: 'The answer is 4.', complete: true });
  assert.deepEqual(splitThinking('prefilled reasoning</think>Answer'), { reasoning_content: 'prefilled reasoning', content: 'Answer', complete: true });
  assert.deepEqual(splitThinking('<think>still thinking'), { reasoning_content: 'still thinking', content: '', complete: false });
  assert.deepEqual(splitThinking('just an answer'), { reasoning_content: '', content: 'just an answer', complete: true });
  assert.deepEqual(splitThinking('<think>a</think>x<think>b</think>y'), { reasoning_content: 'a\n\nb', content: 'xy', complete: true });
  assert.equal(joinThinking({ reasoning_content: 'r', content: 'c' }), '<think>r</think>c');
});
