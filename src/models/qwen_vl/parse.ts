/**
 * Boxes and points in Qwen-VL answers → the processing layer's ParsedBox /
 * ParsedPoint (raw values + original-image pixels), per family (open-models.md §11):
 * - Qwen2-VL: `<|object_ref_start|>label<|object_ref_end|><|box_start|>(x1,y1),(x2,y2)<|box_end|>`
 *   on a relative 0–1000 grid (the special tokens may have been stripped by the
 *   detokenizer; the bare `(x1,y1),(x2,y2)` form is read too);
 * - Qwen2.5-VL: JSON `{"bbox_2d": [x1,y1,x2,y2], "label": …}` / `point_2d` in absolute
 *   pixels of the smart-resized image;
 * - Qwen3-VL: the same JSON on a relative 0–1000 grid.
 * Never throws on model text: unreadable parts become issues.
 */
import { boxToPixels, pointToPixels, type CoordSpace, type ImageSize } from '../../processing/coords.ts';
import type { ParsedBox, ParsedPoint, ParseIssue, ParseResult } from '../../processing/parse.ts';
import type { QwenFamily } from './config.ts';

export interface QwenImageSizes {
  original: ImageSize;
  /** The smart-resized size the model saw (needed for Qwen2.5-VL's absolute pixels). */
  resized: ImageSize;
}

export interface QwenObjects {
  boxes: ParseResult<ParsedBox>;
  points: ParseResult<ParsedPoint>;
}

/** The coordinate space of a family's numbers for one image. */
export function coordSpace(family: QwenFamily, image?: QwenImageSizes): CoordSpace | null {
  if (family === 'qwen2_5_vl') return image ? { kind: 'resized', width: image.resized.width, height: image.resized.height } : null;
  return { kind: 'relative', scale: 1000 };
}

const NUM = String.raw`\s*(-?\d+(?:\.\d+)?)\s*`;
const QWEN2_BOX = new RegExp(
  String.raw`(?:<\|object_ref_start\|>([\s\S]*?)<\|object_ref_end\|>)?\s*(?:<\|box_start\|>)?\(${NUM},${NUM}\)\s*,\s*\(${NUM},${NUM}\)(?:<\|box_end\|>)?`,
  'g',
);

function parseQwen2(text: string, space: CoordSpace, size: ImageSize | undefined): QwenObjects {
  const boxes: ParsedBox[] = [];
  const issues: ParseIssue[] = [];
  let prevEnd = 0;
  for (const m of text.matchAll(QWEN2_BOX)) {
    const raw = [m[2], m[3], m[4], m[5]].map(Number) as [number, number, number, number];
    const label = (m[1] ?? text.slice(prevEnd, m.index).replace(/<\|[^|]*\|>/g, '')).trim().replace(/[\s,:;]+$/, '');
    prevEnd = m.index! + m[0].length;
    if (raw.some((v) => v < 0 || v > 1000)) {
      issues.push({ kind: 'bbox', text: m[0], reason: 'values must lie in [0, 1000]' });
      continue;
    }
    boxes.push({ raw, label, index: m.index!, ...(size ? { pixel: boxToPixels(raw, size, space) } : {}) });
  }
  return { boxes: { items: boxes, issues }, points: { items: [], issues: [] } };
}

/** JSON objects in the text (inside ```json fences or not), each with its offset. */
function* jsonObjects(text: string): Generator<{ value: Record<string, unknown>; index: number; raw: string }> {
  const re = /\{[^{}]*\}/g;
  for (const m of text.matchAll(re)) {
    try {
      const v = JSON.parse(m[0]) as unknown;
      if (v && typeof v === 'object' && !Array.isArray(v)) yield { value: v as Record<string, unknown>, index: m.index!, raw: m[0] };
    } catch {
      // Not JSON (prose with braces): reported only when it names a bbox/point key.
      if (/bbox_2d|point_2d/.test(m[0])) yield { value: { __invalid: m[0] }, index: m.index!, raw: m[0] };
    }
  }
}

function numbers(v: unknown, n: number): number[] | null {
  return Array.isArray(v) && v.length === n && v.every((x) => typeof x === 'number' && Number.isFinite(x)) ? (v as number[]) : null;
}

function parseJson(text: string, family: QwenFamily, space: CoordSpace | null, size: ImageSize | undefined): QwenObjects {
  const boxes: ParsedBox[] = [], points: ParsedPoint[] = [];
  const boxIssues: ParseIssue[] = [], pointIssues: ParseIssue[] = [];
  const max = family === 'qwen2_5_vl' ? Infinity : 1000;
  for (const { value, index, raw } of jsonObjects(text)) {
    if ('__invalid' in value) {
      boxIssues.push({ kind: 'bbox', text: raw, reason: 'not valid JSON' });
      continue;
    }
    const label = typeof value['label'] === 'string' ? value['label'] : '';
    if ('bbox_2d' in value) {
      const b = numbers(value['bbox_2d'], 4);
      if (!b) boxIssues.push({ kind: 'bbox', text: raw, reason: 'bbox_2d must be 4 numbers' });
      else if (b.some((v) => v < 0 || v > max)) boxIssues.push({ kind: 'bbox', text: raw, reason: `values must lie in [0, ${max}]` });
      else {
        const r = b as [number, number, number, number];
        boxes.push({ raw: r, label, index, ...(size && space ? { pixel: boxToPixels(r, size, space) } : {}) });
      }
    }
    if ('point_2d' in value) {
      const p = numbers(value['point_2d'], 2);
      if (!p) pointIssues.push({ kind: 'point', text: raw, reason: 'point_2d must be 2 numbers' });
      else if (p.some((v) => v < 0 || v > max)) pointIssues.push({ kind: 'point', text: raw, reason: `values must lie in [0, ${max}]` });
      else points.push({ raw: [p[0], p[1]], label, index, ...(size && space ? { pixel: pointToPixels(p[0], p[1], size, space) } : {}) });
    }
  }
  return { boxes: { items: boxes, issues: boxIssues }, points: { items: points, issues: pointIssues } };
}

/** Boxes and points of an answer about `image` (pixels in its original size when given). */
export function parseQwenObjects(text: string, family: QwenFamily, image?: QwenImageSizes): QwenObjects {
  const space = coordSpace(family, image);
  if (family === 'qwen2_vl') return parseQwen2(text, space!, image?.original);
  return parseJson(text, family, space, image?.original);
}
