/**
 * Parsers for Seed1.5-VL's text outputs (spec §5–6): `<bbox>`, `<point>`, `<3dbbox>`,
 * temporal segments in seconds, and `<think>` blocks. Parsers never throw on model
 * text: what cannot be read is reported in `issues` next to what could.
 * GUI actions live in parse_gui.ts.
 */
import { boxToPixels, pointToPixels, SEED_COORDS, type CoordSpace, type ImageSize, type PixelBox, type PixelPoint } from './coords.ts';
import type { Box3D } from './box3d.ts';

export interface ParseIssue {
  kind: 'bbox' | 'point' | '3dbbox' | 'segment' | 'think' | 'action';
  /** The offending text. */
  text: string;
  reason: string;
}

export interface ParsedBox {
  /** Raw grid values exactly as the model wrote them. */
  raw: [number, number, number, number];
  /** Original-image pixels (present when an image size was given). */
  pixel?: PixelBox;
  /** Text between the previous tag (or the start) and this one, trimmed: often the label. */
  label: string;
  /** Character offset of the tag in the input. */
  index: number;
}

export interface ParsedPoint {
  raw: [number, number];
  pixel?: PixelPoint;
  label: string;
  index: number;
}

export interface Parsed3DBox extends Box3D {
  raw: number[];
  label: string;
  index: number;
}

export interface ParseResult<T> {
  items: T[];
  issues: ParseIssue[];
}

export interface CoordParseOptions {
  /** Original image size; when given, every item also carries pixel coordinates. */
  size?: ImageSize;
  space?: CoordSpace;
  /** Largest accepted raw value (default 1000: Seed writes 0–999, some models write 1000). */
  maxValue?: number;
}

const NUM = /^[+-]?(?:\d+\.?\d*|\.\d+)$/;

/** Split a tag body on spaces and/or commas (models vary) and read numbers. */
function readNumbers(body: string): number[] | undefined {
  const parts = body.trim().replace(/[()[\]]/g, ' ').split(/[\s,，]+/).filter((s) => s.length > 0);
  if (!parts.every((p) => NUM.test(p))) return undefined;
  return parts.map(Number);
}

/** Iterate `<tag>body</tag>` occurrences, tolerating spaces inside the brackets and any case. */
function* tags(text: string, tag: string): Generator<{ body: string; index: number; end: number; whole: string }> {
  const re = new RegExp(`<\\s*${tag}\\s*>([\\s\\S]*?)<\\s*/\\s*${tag}\\s*>`, 'gi');
  for (const m of text.matchAll(re)) yield { body: m[1]!, index: m.index!, end: m.index! + m[0].length, whole: m[0] };
}

/** Label = text since the previous tag, minus list punctuation. */
function labelBefore(text: string, from: number, to: number): string {
  return text
    .slice(from, to)
    .replace(/<[^>]*>/g, ' ')
    .replace(/^[\s,;:.\-–—、，；：]+|[\s,;:\-–—(（、，；：]+$/g, '')
    .trim();
}

function checkRange(vals: number[], max: number): string | undefined {
  if (vals.some((v) => !Number.isFinite(v) || v < 0 || v > max)) return `values must lie in [0, ${max}]`;
  return undefined;
}

export function parseBoxes(text: string, opts: CoordParseOptions = {}): ParseResult<ParsedBox> {
  const max = opts.maxValue ?? 1000;
  const items: ParsedBox[] = [];
  const issues: ParseIssue[] = [];
  let prevEnd = 0;
  for (const t of tags(text, 'bbox')) {
    const vals = readNumbers(t.body);
    const label = labelBefore(text, prevEnd, t.index);
    prevEnd = t.end;
    if (!vals || vals.length !== 4) {
      issues.push({ kind: 'bbox', text: t.whole, reason: `expected 4 numbers, got "${t.body.trim()}"` });
      continue;
    }
    const bad = checkRange(vals, max);
    if (bad) {
      issues.push({ kind: 'bbox', text: t.whole, reason: bad });
      continue;
    }
    const raw = vals as [number, number, number, number];
    items.push({ raw, label, index: t.index, ...(opts.size ? { pixel: boxToPixels(raw, opts.size, opts.space ?? SEED_COORDS) } : {}) });
  }
  unclosed(text, 'bbox', issues);
  return { items, issues };
}

export function parsePoints(text: string, opts: CoordParseOptions = {}): ParseResult<ParsedPoint> {
  const max = opts.maxValue ?? 1000;
  const items: ParsedPoint[] = [];
  const issues: ParseIssue[] = [];
  let prevEnd = 0;
  for (const t of tags(text, 'point')) {
    const vals = readNumbers(t.body);
    const label = labelBefore(text, prevEnd, t.index);
    prevEnd = t.end;
    if (!vals || vals.length !== 2) {
      issues.push({ kind: 'point', text: t.whole, reason: `expected 2 numbers, got "${t.body.trim()}"` });
      continue;
    }
    const bad = checkRange(vals, max);
    if (bad) {
      issues.push({ kind: 'point', text: t.whole, reason: bad });
      continue;
    }
    const raw = vals as [number, number];
    items.push({ raw, label, index: t.index, ...(opts.size ? { pixel: pointToPixels(raw[0], raw[1], opts.size, opts.space ?? SEED_COORDS) } : {}) });
  }
  unclosed(text, 'point', issues);
  return { items, issues };
}

export function parse3DBoxes(text: string): ParseResult<Parsed3DBox> {
  const items: Parsed3DBox[] = [];
  const issues: ParseIssue[] = [];
  let prevEnd = 0;
  for (const t of tags(text, '3dbbox')) {
    const vals = readNumbers(t.body);
    const label = labelBefore(text, prevEnd, t.index);
    prevEnd = t.end;
    if (!vals || vals.length !== 9) {
      issues.push({ kind: '3dbbox', text: t.whole, reason: `expected 9 numbers, got "${t.body.trim()}"` });
      continue;
    }
    if (vals[5]! <= 0 && vals[3]! <= 0 && vals[4]! <= 0) {
      issues.push({ kind: '3dbbox', text: t.whole, reason: 'box has no extent' });
      continue;
    }
    const [x, y, z, sx, sy, sz, pitch, yaw, roll] = vals as [number, number, number, number, number, number, number, number, number];
    items.push({ raw: vals, label, index: t.index, center: [x, y, z], size: [sx, sy, sz], pitch, yaw, roll });
  }
  unclosed(text, '3dbbox', issues);
  return { items, issues };
}

/** Report an opening tag that never closes (a truncated generation). */
function unclosed(text: string, tag: string, issues: ParseIssue[]): void {
  const opens = [...text.matchAll(new RegExp(`<\\s*${tag}\\s*>`, 'gi'))].length;
  const closes = [...text.matchAll(new RegExp(`<\\s*/\\s*${tag}\\s*>`, 'gi'))].length;
  if (opens > closes) {
    const at = text.toLowerCase().lastIndexOf(`<${tag}`);
    issues.push({ kind: tag === '3dbbox' ? '3dbbox' : (tag as 'bbox' | 'point'), text: text.slice(Math.max(0, at), at + 60), reason: `<${tag}> is not closed` });
  }
}

// ---------------------------------------------------------------- temporal segments

export interface TimeSegment {
  /** Seconds. */
  start: number;
  end: number;
  text: string;
  index: number;
}

// A time is seconds ("3.2") or clock time ("1:05", "00:01:05.5").
const TIME = String.raw`(?:\d+:)?(?:\d+:)?\d+(?:\.\d+)?`;
const SEP = String.raw`\s*(?:-|–|—|~|～|to|until|and)\s*`;
const UNIT = String.raw`(?:s|sec|secs|second|seconds|秒)\b`;
const SEGMENT_RE = new RegExp(String.raw`(?:\[\s*(${TIME})\s*,\s*(${TIME})\s*\]|(${TIME})${SEP}(${TIME}))(\s*${UNIT})?`, 'giu');

function toSeconds(s: string): number {
  return s.split(':').reduce((acc, part) => acc * 60 + Number(part), 0);
}

/**
 * Find time ranges such as "3.2–10.0 seconds", "6-8 seconds, 16-22 seconds",
 * "from 1.5 to 3 seconds", "[3.2, 10.0]" or "00:05-00:12". A range without a unit is
 * accepted when a later range in the same list carries one ("6-8, 16-22 seconds"),
 * when it uses clock time, or when the whole reply is nothing but ranges; this keeps
 * "pages 3-5" out.
 */
export function parseTimeSegments(text: string): ParseResult<TimeSegment> {
  const found: (TimeSegment & { hasUnit: boolean; clock: boolean; brackets: boolean })[] = [];
  const issues: ParseIssue[] = [];
  for (const m of text.matchAll(SEGMENT_RE)) {
    const a = m[1] ?? m[3]!;
    const b = m[2] ?? m[4]!;
    // Reject matches glued to a preceding digit or letter, e.g. dates like 2024-05-06.
    const before = text[m.index! - 1];
    if (before !== undefined && /[\p{L}\p{N}.:/-]/u.test(before) && !/^\[/.test(m[0])) continue;
    found.push({ start: toSeconds(a), end: toSeconds(b), text: m[0].trim(), index: m.index!, hasUnit: m[5] !== undefined, clock: a.includes(':') || b.includes(':'), brackets: m[1] !== undefined });
  }
  const onlyRanges = text.replace(SEGMENT_RE, '').replace(/(?:\s|[,;，；、.]|\band\b)+/g, '').length === 0;
  const items: TimeSegment[] = [];
  for (let i = 0; i < found.length; i++) {
    const f = found[i]!;
    const unitLater = found.slice(i + 1).some((g) => g.hasUnit && /^[\s,;，；、]*(?:and\s*)?$/.test(text.slice(f.index + f.text.length, g.index).replace(SEGMENT_RE, '')));
    if (!(f.hasUnit || f.clock || f.brackets || unitLater || onlyRanges)) continue;
    if (!(f.end >= f.start)) {
      issues.push({ kind: 'segment', text: f.text, reason: `end ${f.end} is before start ${f.start}` });
      continue;
    }
    items.push({ start: f.start, end: f.end, text: f.text, index: f.index });
  }
  return { items, issues };
}

// ---------------------------------------------------------------- thinking

export interface ThinkingSplit {
  /** The text inside <think>…</think> (trimmed), or '' when there is none. */
  reasoning_content: string;
  /** The answer after </think> (trimmed). */
  content: string;
  /** False when a <think> block was opened but never closed (a truncated generation). */
  complete: boolean;
}

/**
 * Split `<think>reasoning</think>answer`. Tolerates a missing opening tag (the prompt
 * may have pre-filled "<think>"), several think blocks (joined), and an unclosed block
 * (all of it is reasoning, the answer is empty).
 */
export function splitThinking(text: string): ThinkingSplit {
  const firstOpen = text.search(/<think>/i);
  const firstClose = text.search(/<\/think>/i);
  if (firstOpen < 0 && firstClose < 0) return { reasoning_content: '', content: text.trim(), complete: true };
  const reasoning: string[] = [];
  let rest = text;
  if (firstClose >= 0 && (firstOpen < 0 || firstClose < firstOpen)) {
    // Reasoning started before the visible text: everything up to the first </think>.
    const i = rest.search(/<\/think>/i);
    reasoning.push(rest.slice(0, i));
    rest = rest.slice(i + '</think>'.length);
  }
  let answer = '';
  let complete = true;
  for (;;) {
    const i = rest.search(/<think>/i);
    if (i < 0) {
      answer += rest;
      break;
    }
    answer += rest.slice(0, i);
    rest = rest.slice(i + '<think>'.length);
    const j = rest.search(/<\/think>/i);
    if (j < 0) {
      reasoning.push(rest);
      complete = false;
      break;
    }
    reasoning.push(rest.slice(0, j));
    rest = rest.slice(j + '</think>'.length);
  }
  return { reasoning_content: reasoning.map((r) => r.trim()).filter(Boolean).join('\n\n'), content: answer.trim(), complete };
}

/** Rebuild the raw form from a split (what the cookbook demo shows). */
export function joinThinking(s: { reasoning_content: string; content: string }): string {
  return s.reasoning_content ? `<think>${s.reasoning_content}</think>${s.content}` : s.content;
}
