/**
 * Draw boxes, points and labels onto the original image and save as PNG. Shapes are
 * drawn directly on the RGB pixels (exact, testable); labels are rendered through an
 * SVG overlay composited by sharp (text needs a font renderer).
 */
import { writeFile } from 'node:fs/promises';
import sharp from 'sharp';
import type { PixelBox, PixelPoint, ImageSize, CoordSpace } from './coords.ts';
import { parseBoxes, parsePoints } from './parse.ts';
import type { RgbImage } from './resample.ts';

export type Rgb = [number, number, number];

export type Annotation =
  | { kind: 'box'; box: PixelBox; label?: string; color?: Rgb }
  | { kind: 'point'; point: PixelPoint; label?: string; color?: Rgb };

export interface DrawOptions {
  /** Line width of boxes in pixels (default: about 0.4% of the short side, at least 2). */
  thickness?: number;
  /** Radius of point markers (default: 2 × thickness + 1). */
  radius?: number;
}

/** Distinct colours, cycled per annotation. */
export const PALETTE: Rgb[] = [[230, 25, 75], [60, 180, 75], [0, 130, 200], [245, 130, 48], [145, 30, 180], [70, 240, 240], [240, 50, 230], [210, 245, 60]];

function setPx(img: RgbImage, x: number, y: number, c: Rgb): void {
  if (x < 0 || y < 0 || x >= img.width || y >= img.height) return;
  img.data.set(c, (y * img.width + x) * 3);
}

function fillRect(img: RgbImage, x0: number, y0: number, x1: number, y1: number, c: Rgb): void {
  for (let y = Math.max(0, y0); y <= Math.min(img.height - 1, y1); y++) {
    for (let x = Math.max(0, x0); x <= Math.min(img.width - 1, x1); x++) setPx(img, x, y, c);
  }
}

function thicknessFor(img: ImageSize, o: DrawOptions): number {
  return o.thickness ?? Math.max(2, Math.round(Math.min(img.width, img.height) * 0.004));
}

/** Draw shapes onto a copy of the image. Boxes are outlined inside their bounds. */
export function drawAnnotations(src: RgbImage, items: readonly Annotation[], o: DrawOptions = {}): RgbImage {
  const img: RgbImage = { width: src.width, height: src.height, data: new Uint8Array(src.data) };
  const t = thicknessFor(img, o);
  const r = o.radius ?? 2 * t + 1;
  items.forEach((a, i) => {
    const c = a.color ?? PALETTE[i % PALETTE.length]!;
    if (a.kind === 'box') {
      const x0 = Math.round(a.box.x1);
      const y0 = Math.round(a.box.y1);
      const x1 = Math.round(a.box.x2) - 1;
      const y1 = Math.round(a.box.y2) - 1;
      fillRect(img, x0, y0, x1, y0 + t - 1, c);
      fillRect(img, x0, y1 - t + 1, x1, y1, c);
      fillRect(img, x0, y0, x0 + t - 1, y1, c);
      fillRect(img, x1 - t + 1, y0, x1, y1, c);
    } else {
      const cx = Math.floor(a.point.x);
      const cy = Math.floor(a.point.y);
      for (let dy = -r; dy <= r; dy++) for (let dx = -r; dx <= r; dx++) if (dx * dx + dy * dy <= r * r) setPx(img, cx + dx, cy + dy, c);
    }
  });
  return img;
}

function escapeXml(s: string): string {
  return s.replace(/[<>&'"]/g, (ch) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', "'": '&apos;', '"': '&quot;' })[ch]!);
}

/** Shapes plus labels, encoded as PNG; written to `outPath` when given. */
export async function renderAnnotationsPng(src: RgbImage, items: readonly Annotation[], outPath?: string, o: DrawOptions = {}): Promise<Buffer> {
  const img = drawAnnotations(src, items, o);
  const fontSize = Math.max(10, Math.round(Math.min(img.width, img.height) * 0.03));
  const labels = items
    .map((a, i) => {
      if (!a.label) return '';
      const c = a.color ?? PALETTE[i % PALETTE.length]!;
      const x = a.kind === 'box' ? a.box.x1 : a.point.x + 4;
      const y = a.kind === 'box' ? Math.max(fontSize, a.box.y1 - 3) : Math.max(fontSize, a.point.y - 4);
      return `<text x="${x.toFixed(1)}" y="${y.toFixed(1)}" font-family="sans-serif" font-size="${fontSize}" fill="rgb(${c.join(',')})" stroke="white" stroke-width="0.6">${escapeXml(a.label)}</text>`;
    })
    .join('');
  let pipeline = sharp(Buffer.from(img.data.buffer, img.data.byteOffset, img.data.byteLength), { raw: { width: img.width, height: img.height, channels: 3 } });
  if (labels) {
    const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${img.width}" height="${img.height}">${labels}</svg>`;
    pipeline = pipeline.composite([{ input: Buffer.from(svg), top: 0, left: 0 }]);
  }
  const png = await pipeline.removeAlpha().png().toBuffer();
  if (outPath) await writeFile(outPath, png);
  return png;
}

/** Every `<bbox>` and `<point>` in a model reply, as annotations in original pixels. */
export function annotationsFromText(text: string, size: ImageSize, space?: CoordSpace): Annotation[] {
  const opts = { size, ...(space ? { space } : {}) };
  const boxes = parseBoxes(text, opts).items.map((b): Annotation => ({ kind: 'box', box: b.pixel!, ...(b.label ? { label: b.label } : {}) }));
  const points = parsePoints(text, opts).items.map((p): Annotation => ({ kind: 'point', point: p.pixel!, ...(p.label ? { label: p.label } : {}) }));
  return [...boxes, ...points];
}
