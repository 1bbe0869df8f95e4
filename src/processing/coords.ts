/**
 * Coordinate conventions. Seed1.5-VL reads and writes integers on a relative 0–999
 * grid and the cookbook maps them back with x / 1000 · W (spec §6.1). Qwen2.5-VL
 * instead uses absolute pixels of the smart-resized image. Everything we return
 * carries the raw model values next to pixels in the original (EXIF-oriented) image.
 */

export interface ImageSize {
  width: number;
  height: number;
}

/** How the model's numbers relate to the image. */
export type CoordSpace =
  /** Relative grid: pixel = v / scale · size (Seed: scale 1000, values 0–999). */
  | { kind: 'relative'; scale: number }
  /** Absolute pixels of a resized image (Qwen2.5-VL): pixel = v · original / resized. */
  | { kind: 'resized'; width: number; height: number };

export const SEED_COORDS: CoordSpace = { kind: 'relative', scale: 1000 };
/** Largest value on Seed's grid. */
export const SEED_GRID_MAX = 999;

export interface PixelPoint {
  x: number;
  y: number;
}

export interface PixelBox {
  x1: number;
  y1: number;
  x2: number;
  y2: number;
}

function axisToPixel(v: number, axis: 'x' | 'y', size: ImageSize, space: CoordSpace): number {
  const full = axis === 'x' ? size.width : size.height;
  if (space.kind === 'relative') return (v / space.scale) * full;
  const resized = axis === 'x' ? space.width : space.height;
  return (v * full) / resized;
}

/** A model point → original-image pixels. */
export function pointToPixels(x: number, y: number, size: ImageSize, space: CoordSpace = SEED_COORDS): PixelPoint {
  return { x: axisToPixel(x, 'x', size, space), y: axisToPixel(y, 'y', size, space) };
}

/**
 * A model box → original-image pixels. Corners are reordered so that x1 ≤ x2 and
 * y1 ≤ y2 (a model occasionally swaps them); the raw values stay untouched elsewhere.
 */
export function boxToPixels(box: readonly [number, number, number, number], size: ImageSize, space: CoordSpace = SEED_COORDS): PixelBox {
  const [a, b, c, d] = box;
  const x1 = axisToPixel(Math.min(a, c), 'x', size, space);
  const x2 = axisToPixel(Math.max(a, c), 'x', size, space);
  const y1 = axisToPixel(Math.min(b, d), 'y', size, space);
  const y2 = axisToPixel(Math.max(b, d), 'y', size, space);
  return { x1, y1, x2, y2 };
}

/**
 * Original-image pixels → the model's grid (for prompts that reference a location).
 * Rounds to the nearest unit and clamps to [0, max]; round-tripping back to pixels is
 * then within one grid unit (size / scale).
 */
export function pixelToGrid(px: number, full: number, scale = 1000, max = SEED_GRID_MAX): number {
  if (!(full > 0)) throw new RangeError(`image side must be positive, got ${full}`);
  const v = Math.round((px / full) * scale);
  return Math.min(max, Math.max(0, v));
}

export function pointFromPixels(p: PixelPoint, size: ImageSize, scale = 1000): [number, number] {
  return [pixelToGrid(p.x, size.width, scale), pixelToGrid(p.y, size.height, scale)];
}

export function boxFromPixels(b: PixelBox, size: ImageSize, scale = 1000): [number, number, number, number] {
  return [
    pixelToGrid(b.x1, size.width, scale),
    pixelToGrid(b.y1, size.height, scale),
    pixelToGrid(b.x2, size.width, scale),
    pixelToGrid(b.y2, size.height, scale),
  ];
}

/** Seed text for a point or a box, e.g. to put a location into a prompt. */
export function formatPoint(p: readonly [number, number]): string {
  return `<point>${p[0]} ${p[1]}</point>`;
}

export function formatBox(b: readonly [number, number, number, number]): string {
  return `<bbox>${b[0]} ${b[1]} ${b[2]} ${b[3]}</bbox>`;
}
