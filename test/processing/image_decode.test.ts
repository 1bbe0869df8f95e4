import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import sharp from 'sharp';
import { decodeImage, loadImage } from '../../src/processing/image.ts';
import { preprocessImage, planImage } from '../../src/processing/preprocess.ts';
import { MediaError, type MediaErrorCode } from '../../src/processing/errors.ts';
import { SEED_VISION } from '../../src/processing/vision_config.ts';
import { makeScene, near, pixelAt, rawSharp, tempDir } from './_media.ts';

const scene = makeScene(60, 40, [{ x: 0, y: 0, w: 20, h: 10, rgb: [255, 0, 0] }], [0, 0, 255]);
const tmp = tempDir();
after(() => tmp.cleanup());

async function rejectsWith(p: Promise<unknown>, code: MediaErrorCode, includes?: string) {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof MediaError, `expected MediaError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    if (includes) assert.ok(e.message.includes(includes), e.message);
    return true;
  });
}

test('decodes PNG, lossless WebP, JPEG and GIF to the same RGB pixels', async () => {
  const encoders = {
    png: rawSharp(scene).png(),
    webp: rawSharp(scene).webp({ lossless: true }),
    jpeg: rawSharp(scene).jpeg({ quality: 100, chromaSubsampling: '4:4:4' }),
    gif: rawSharp(scene).gif(),
  };
  for (const [fmt, enc] of Object.entries(encoders)) {
    const img = await decodeImage(await enc.toBuffer());
    assert.equal(img.format, fmt);
    assert.deepEqual([img.width, img.height], [60, 40]);
    const tol = fmt === 'jpeg' ? 8 : 0;
    assert.ok(near(pixelAt(img, 5, 5), [255, 0, 0], tol), `${fmt} red ${pixelAt(img, 5, 5)}`);
    assert.ok(near(pixelAt(img, 50, 30), [0, 0, 255], tol), `${fmt} blue ${pixelAt(img, 50, 30)}`);
  }
});

test('GIF: only the first frame of an animation is decoded', async () => {
  const f1 = makeScene(8, 8, [], [255, 0, 0]);
  const f2 = makeScene(8, 8, [], [0, 255, 0]);
  const stacked = Buffer.concat([Buffer.from(f1.data), Buffer.from(f2.data)]);
  const gif = await sharp(stacked, { raw: { width: 8, height: 16, channels: 3, pageHeight: 8 } as never }).gif().toBuffer();
  assert.equal((await sharp(gif).metadata()).pages, 2);
  const img = await decodeImage(gif);
  assert.deepEqual([img.width, img.height], [8, 8]);
  assert.deepEqual(pixelAt(img, 4, 4), [255, 0, 0]);
});

test('EXIF orientation is applied (orientation 6 = rotate 90° clockwise)', async () => {
  const jpeg = await rawSharp(scene).jpeg({ quality: 100 }).withMetadata({ orientation: 6 }).toBuffer();
  const img = await decodeImage(jpeg);
  assert.equal(img.exifOrientation, 6);
  assert.deepEqual([img.width, img.height], [40, 60]);
  // Stored top-left red block ends up at the top-right after a clockwise turn.
  assert.ok(near(pixelAt(img, 35, 5), [255, 0, 0], 10), `top-right ${pixelAt(img, 35, 5)}`);
  assert.ok(near(pixelAt(img, 5, 5), [0, 0, 255], 10), `top-left ${pixelAt(img, 5, 5)}`);
});

test('alpha is flattened onto white; greyscale becomes RGB', async () => {
  const rgba = new Uint8Array(4 * 4 * 4);
  for (let i = 0; i < 16; i++) rgba.set(i < 8 ? [0, 0, 0, 0] : [0, 0, 0, 255], i * 4);
  const png = await sharp(Buffer.from(rgba), { raw: { width: 4, height: 4, channels: 4 } }).png().toBuffer();
  const img = await decodeImage(png);
  assert.equal(img.hadAlpha, true);
  assert.deepEqual(pixelAt(img, 0, 0), [255, 255, 255]); // transparent → white
  assert.deepEqual(pixelAt(img, 0, 3), [0, 0, 0]); // opaque black stays black
  const grey = await sharp(Buffer.from(new Uint8Array(16).fill(100)), { raw: { width: 4, height: 4, channels: 1 } }).png().toBuffer();
  const g = await decodeImage(grey);
  assert.equal(g.data.length, 4 * 4 * 3);
  assert.deepEqual(pixelAt(g, 1, 1), [100, 100, 100]);
});

test('16-bit PNG is reduced to 8 bits', async () => {
  const png16 = await rawSharp(scene).toColourspace('rgb16').png().toBuffer();
  const img = await decodeImage(png16);
  assert.deepEqual(pixelAt(img, 5, 5), [255, 0, 0]);
});

test('loads from a path, a file:// URL, a data: URL and a Buffer alike', async () => {
  const png = await rawSharp(scene).png().toBuffer();
  const path = join(tmp.dir, 'scene.png');
  writeFileSync(path, png);
  const dataUrl = `data:image/png;base64,${png.toString('base64')}`;
  for (const src of [path, pathToFileURL(path).href, dataUrl, png]) {
    const img = await loadImage(src);
    assert.deepEqual([img.width, img.height, img.data.length], [60, 40, 60 * 40 * 3]);
  }
});

test('bad inputs give typed errors that name the problem and the input', async () => {
  const png = await rawSharp(scene).png().toBuffer();
  await rejectsWith(loadImage(join(tmp.dir, 'missing.png')), 'not_found', 'missing.png');
  await rejectsWith(decodeImage(new Uint8Array(0)), 'decode_failed', 'empty');
  await rejectsWith(decodeImage(Buffer.from('this is not an image at all')), 'unsupported_format');
  await rejectsWith(decodeImage(png.subarray(0, Math.floor(png.length / 2))), 'decode_failed');
  const jpeg = await rawSharp(scene).jpeg().toBuffer();
  await rejectsWith(decodeImage(jpeg.subarray(0, Math.floor(jpeg.length * 0.6))), 'decode_failed');
  const tiff = await rawSharp(scene).tiff().toBuffer();
  await rejectsWith(decodeImage(tiff), 'unsupported_format', 'tiff');
  await rejectsWith(loadImage('data:image/png;base64,@@@notbase64'), 'invalid_input');
  await rejectsWith(loadImage('https://example.invalid/cat.png'), 'network_disabled', 'example.invalid');
  await rejectsWith(loadImage(png, { maxBytes: 10 }), 'too_large');
  await rejectsWith(decodeImage(png, 'big', { maxInputPixels: 100 }), 'too_large');
});

test('1x1, thin and extreme-aspect images: typed errors, nothing crashes', async () => {
  const one = await rawSharp(makeScene(1, 1, [])).png().toBuffer();
  await rejectsWith(preprocessImage(one), 'too_small', '1x1');
  // Accepted when asked: the reference upsizes 1x1 to 56x56.
  const r = await preprocessImage(one, SEED_VISION, { minSide: 1 });
  assert.deepEqual(r.resized, { width: 56, height: 56 });
  const wide = await rawSharp(makeScene(402, 2, [])).png().toBuffer();
  await rejectsWith(preprocessImage(wide), 'aspect_ratio', '201');
  assert.throws(() => planImage(0, 10), (e: unknown) => e instanceof MediaError && e.code === 'too_small');
});

test('http(s) URLs: fetched only when allowed, with size and time limits', async () => {
  const png = await rawSharp(scene).png().toBuffer();
  const server: Server = createServer((req, res) => {
    if (req.url === '/ok.png') { res.writeHead(200, { 'content-type': 'image/png' }); res.end(png); }
    else if (req.url === '/slow') { setTimeout(() => { res.writeHead(200); res.end(png); }, 2000).unref(); }
    else { res.writeHead(404); res.end(); }
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const port = (server.address() as { port: number }).port;
  const base = `http://127.0.0.1:${port}`;
  try {
    const img = await loadImage(`${base}/ok.png`, { allowNetwork: true });
    assert.deepEqual([img.width, img.height], [60, 40]);
    await rejectsWith(loadImage(`${base}/ok.png`), 'network_disabled');
    await rejectsWith(loadImage(`${base}/nope.png`, { allowNetwork: true }), 'network_failed', '404');
    await rejectsWith(loadImage(`${base}/ok.png`, { allowNetwork: true, maxBytes: 50 }), 'too_large');
    await rejectsWith(loadImage(`${base}/slow`, { allowNetwork: true, timeoutMs: 100 }), 'network_failed', 'timed out');
  } finally {
    server.closeAllConnections();
    await new Promise((ok) => server.close(ok));
  }
});
