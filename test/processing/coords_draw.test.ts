// Coordinates land on the right object in original pixels, on non-square and EXIF-rotated images.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { existsSync } from 'node:fs';
import { boxFromPixels, boxToPixels, formatBox, formatPoint, pixelToGrid, pointFromPixels, pointToPixels } from '../../src/processing/coords.ts';
import { parseBoxes, parsePoints } from '../../src/processing/parse.ts';
import { decodeImage } from '../../src/processing/image.ts';
import { preprocessRgb } from '../../src/processing/preprocess.ts';
import { annotationsFromText, drawAnnotations, renderAnnotationsPng } from '../../src/processing/draw.ts';
import { makeScene, near, pixelAt, rawSharp, tempDir } from './_media.ts';

const tmp = tempDir();
after(() => tmp.cleanup());

test('pixel → 0–999 → pixel is within one grid unit, on every pixel of odd-sized sides', () => {
  for (const full of [1, 7, 999, 1000, 1001, 1366, 4000]) {
    const unit = full / 1000;
    for (let px = 0; px <= full; px += Math.max(1, Math.floor(full / 500))) {
      const g = pixelToGrid(px, full);
      assert.ok(g >= 0 && g <= 999 && Number.isInteger(g));
      const back = pointToPixels(g, 0, { width: full, height: 1 }).x;
      assert.ok(Math.abs(back - px) <= unit + 1e-9, `side ${full}: ${px} → ${g} → ${back}`);
    }
  }
  assert.deepEqual(pointFromPixels({ x: 1280, y: 720 }, { width: 2560, height: 1440 }), [500, 500]);
  assert.deepEqual(boxFromPixels({ x1: 0, y1: 0, x2: 2560, y2: 1440 }, { width: 2560, height: 1440 }), [0, 0, 999, 999]);
  // Qwen2.5-VL: absolute pixels of the resized image.
  assert.deepEqual(boxToPixels([140, 56, 280, 112], { width: 1000, height: 400 }, { kind: 'resized', width: 560, height: 224 }), { x1: 250, y1: 100, x2: 500, y2: 200 });
});

/** A wide scene with a red target and a green decoy. */
const W = 600, H = 200;
const target = { x: 420, y: 40, w: 90, h: 120 };
const scene = makeScene(W, H, [{ ...target, rgb: [255, 0, 0] }, { x: 60, y: 60, w: 80, h: 80, rgb: [0, 200, 0] }], [255, 255, 255]);

/** What a perfect model would answer for the red object of an image. */
function perfectAnswer(img: { width: number; height: number; data: Uint8Array }): string {
  let x1 = Infinity, y1 = Infinity, x2 = -1, y2 = -1;
  for (let y = 0; y < img.height; y++) for (let x = 0; x < img.width; x++) {
    const [r, g, b] = pixelAt(img as never, x, y);
    if (r > 200 && g < 60 && b < 60) (x1 = Math.min(x1, x), y1 = Math.min(y1, y), x2 = Math.max(x2, x + 1), y2 = Math.max(y2, y + 1));
  }
  const size = { width: img.width, height: img.height };
  const box = boxFromPixels({ x1, y1, x2, y2 }, size);
  const centre = pointFromPixels({ x: (x1 + x2) / 2, y: (y1 + y2) / 2 }, size);
  return `red block ${formatBox(box)} centre ${formatPoint(centre)}`;
}

function assertOnRed(img: ReturnType<typeof makeScene>, answer: string) {
  const size = { width: img.width, height: img.height };
  const box = parseBoxes(answer, { size }).items[0]!.pixel!;
  const pt = parsePoints(answer, { size }).items[0]!.pixel!;
  // The centre point and a point inset by one grid unit from every corner are red.
  assert.ok(near(pixelAt(img, pt.x, pt.y), [255, 0, 0], 20), `centre ${pt.x},${pt.y} is ${pixelAt(img, pt.x, pt.y)}`);
  const ux = img.width / 1000 + 1, uy = img.height / 1000 + 1;
  for (const [x, y] of [[box.x1 + ux, box.y1 + uy], [box.x2 - ux, box.y1 + uy], [box.x1 + ux, box.y2 - uy], [box.x2 - ux, box.y2 - uy]] as const) {
    assert.ok(near(pixelAt(img, x, y), [255, 0, 0], 20), `corner ${x},${y} is ${pixelAt(img, x, y)}`);
  }
}

test('boxes on a 3:1 image land on the object in original pixels, independent of the model resize', () => {
  const answer = perfectAnswer(scene);
  assertOnRed(scene, answer);
  // The model sees a resized image; relative coordinates do not depend on that size.
  const seen = preprocessRgb(scene, undefined, { maxPixels: 28 * 28 * 20 });
  assert.notDeepEqual(seen.resized, { width: W, height: H });
  assert.deepEqual(parseBoxes(answer, { size: seen.original }).items[0]!.pixel, parseBoxes(answer, { size: { width: W, height: H } }).items[0]!.pixel);
});

test('EXIF-rotated JPEG: coordinates refer to the upright image a person sees', async () => {
  const { x, y, w, h } = target;
  // Where the red target sits once the EXIF orientation is applied (computed from geometry, not from pixels).
  const upright: Record<number, { size: [number, number]; rect: [number, number, number, number] }> = {
    3: { size: [W, H], rect: [W - x - w, H - y - h, w, h] }, // 180°
    6: { size: [H, W], rect: [H - y - h, x, h, w] }, // 90° clockwise
    8: { size: [H, W], rect: [y, W - x - w, h, w] }, // 90° counter-clockwise
  };
  for (const [orientation, exp] of Object.entries(upright)) {
    const jpeg = await rawSharp(scene).jpeg({ quality: 95 }).withMetadata({ orientation: Number(orientation) }).toBuffer();
    const img = await decodeImage(jpeg);
    assert.deepEqual([img.width, img.height], exp.size, `orientation ${orientation}`);
    const [rx, ry, rw, rh] = exp.rect;
    const size = { width: img.width, height: img.height };
    const answer = `red block ${formatBox(boxFromPixels({ x1: rx, y1: ry, x2: rx + rw, y2: ry + rh }, size))} centre ${formatPoint(pointFromPixels({ x: rx + rw / 2, y: ry + rh / 2 }, size))}`;
    assertOnRed(img, answer);
    assert.deepEqual(answer, perfectAnswer(img), `orientation ${orientation}`);
  }
});

test('drawing: boxes and points on the original image, saved as PNG', async () => {
  const answer = perfectAnswer(scene);
  const items = annotationsFromText(answer, { width: W, height: H });
  assert.equal(items.length, 2);
  assert.equal(items[0]!.label, 'red block');
  const drawn = drawAnnotations(scene, [{ kind: 'box', box: { x1: 10, y1: 10, x2: 50, y2: 40 }, color: [0, 0, 255] }, { kind: 'point', point: { x: 300, y: 100 }, color: [0, 0, 0] }], { thickness: 2 });
  assert.deepEqual(pixelAt(drawn, 10, 20), [0, 0, 255]); // left edge
  assert.deepEqual(pixelAt(drawn, 49, 20), [0, 0, 255]); // right edge (x2 exclusive)
  assert.deepEqual(pixelAt(drawn, 30, 25), [255, 255, 255]); // inside untouched
  assert.deepEqual(pixelAt(drawn, 300, 100), [0, 0, 0]);
  assert.deepEqual(pixelAt(scene, 10, 20), [255, 255, 255]); // the input is not modified
  const out = join(tmp.dir, 'drawn.png');
  const png = await renderAnnotationsPng(scene, items, out);
  assert.ok(existsSync(out));
  const back = await decodeImage(png);
  assert.deepEqual([back.width, back.height], [W, H]);
  assert.ok(near(pixelAt(back, target.x + 1, target.y + target.h / 2), [230, 25, 75], 0), 'box outline drawn on the target edge');
  assert.ok(near(pixelAt(back, 100, 100), [0, 200, 0], 0), 'decoy untouched');
});
