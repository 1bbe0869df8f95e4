/** Test helpers that synthesise media files. Nothing here touches the network. */
import sharp from 'sharp';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RgbImage } from '../../src/processing/resample.ts';

/** A solid background with axis-aligned coloured rectangles. */
export function makeScene(width: number, height: number, rects: { x: number; y: number; w: number; h: number; rgb: [number, number, number] }[], bg: [number, number, number] = [255, 255, 255]): RgbImage {
  const data = new Uint8Array(width * height * 3);
  for (let i = 0; i < width * height; i++) data.set(bg, i * 3);
  for (const r of rects) {
    for (let y = r.y; y < r.y + r.h; y++) for (let x = r.x; x < r.x + r.w; x++) data.set(r.rgb, (y * width + x) * 3);
  }
  return { width, height, data };
}

export function rawSharp(img: RgbImage, channels: 3 | 4 = 3) {
  return sharp(Buffer.from(img.data), { raw: { width: img.width, height: img.height, channels } });
}

export function pixelAt(img: RgbImage, x: number, y: number): [number, number, number] {
  const o = (Math.floor(y) * img.width + Math.floor(x)) * 3;
  return [img.data[o]!, img.data[o + 1]!, img.data[o + 2]!];
}

export function near(a: number[], b: number[], tol: number): boolean {
  return a.every((v, i) => Math.abs(v - b[i]!) <= tol);
}

export function tempDir(prefix = 'seedvl-test-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}
