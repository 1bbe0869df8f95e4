/**
 * GUI actions in the Seed computer/mobile grammars (agents-and-eval.md §1–3):
 *
 *   Thought: …
 *   Action: click(point='<point>512 300</point>')
 *
 * Tolerant in the ways ByteDance's UI-TARS parser is: full-width colons, extra
 * spaces, Reflection/Action_Summary sections, several actions per reply (blank
 * lines or plain newlines between them), `<point>`, `<bbox>`, `(x,y)` and
 * `[x1, y1, x2, y2]` coordinates, `<|box_start|>` tokens, point→box duplication.
 * It never throws; unreadable parts become issues.
 */
import { SEED_COORDS, type CoordSpace, type ImageSize } from './coords.ts';
import type { ParseIssue } from './parse.ts';

export type GuiGrammar = 'computer' | 'mobile' | 'grounding' | 'any';

export const GUI_ACTIONS: Record<Exclude<GuiGrammar, 'any'>, readonly string[]> = {
  computer: ['click', 'left_double', 'right_single', 'drag', 'hotkey', 'type', 'scroll', 'wait', 'finished'],
  mobile: ['click', 'long_press', 'type', 'scroll', 'open_app', 'drag', 'press_home', 'press_back', 'finished'],
  grounding: ['click'],
};

export interface GuiCoord {
  /** Numbers as written (2 for a point, 4 for a box). */
  raw: number[];
  /** Normalised [x1, y1, x2, y2] in 0..1; a point is duplicated to four values. */
  box: [number, number, number, number];
  /** Centre of the box in screenshot pixels, when a size was given. */
  pixel?: { x: number; y: number };
}

export interface GuiAction {
  /** Action name, lower-cased (click, drag, type, …). */
  action: string;
  /** Arguments with normalised names (start, end, content, key, direction, app_name) and raw string values. */
  args: Record<string, string>;
  start?: GuiCoord;
  end?: GuiCoord;
  /** Unescaped text for type/finished. */
  content?: string;
  /** type(): a trailing newline means "submit". */
  submit?: boolean;
  /** hotkey(): lower-cased keys. */
  keys?: string[];
  direction?: string;
  appName?: string;
  /** The call as written. */
  text: string;
}

export interface GuiParse {
  thought?: string;
  reflection?: string;
  summary?: string;
  actions: GuiAction[];
  issues: ParseIssue[];
}

export interface GuiParseOptions {
  grammar?: GuiGrammar;
  /** Screenshot size the model saw; adds pixel centres. */
  size?: ImageSize;
  space?: CoordSpace;
}

const ARG_ALIASES: Record<string, string> = {
  point: 'start', start_point: 'start', start_box: 'start',
  end_point: 'end', end_box: 'end',
  hotkey: 'key',
};

export function parseGuiActions(text: string, opts: GuiParseOptions = {}): GuiParse {
  const issues: ParseIssue[] = [];
  const clean = text
    .replace(/：/g, ':')
    .replace(/\[EOS\]/g, '')
    .replace(/<\|box_(?:start|end)\|>/g, '')
    .trim();
  // Section labels count only at the start of a line, so "Action:" inside typed text is safe.
  const labelRe = /^[ \t]*(thought|reflection|action_summary|action)[ \t]*:[ \t]*/gim;
  const marks = [...clean.matchAll(labelRe)].map((m) => ({ label: m[1]!.toLowerCase(), start: m.index!, body: m.index! + m[0].length }));
  const sections: Record<string, string[]> = {};
  marks.forEach((m, i) => {
    const end = i + 1 < marks.length ? marks[i + 1]!.start : clean.length;
    (sections[m.label] ??= []).push(clean.slice(m.body, end).trim());
  });
  const out: GuiParse = { actions: [], issues };
  if (sections['thought']) out.thought = sections['thought'].join('\n');
  if (sections['reflection']) out.reflection = sections['reflection'].join('\n');
  if (sections['action_summary']) {
    out.summary = sections['action_summary'].join('\n');
    out.thought ??= out.summary;
  }
  let actionText: string;
  if (sections['action']) actionText = sections['action'].join('\n\n');
  else if (marks.length === 0 && /^[a-z_]+\s*\(/i.test(clean)) actionText = clean; // bare grounding output
  else {
    issues.push({ kind: 'action', text: clean.slice(0, 80), reason: 'no "Action:" section' });
    return out;
  }
  const allowed = opts.grammar && opts.grammar !== 'any' ? GUI_ACTIONS[opts.grammar] : undefined;
  for (const call of scanCalls(actionText, issues)) {
    const action = buildAction(call, opts, issues);
    if (allowed && !allowed.includes(action.action)) {
      issues.push({ kind: 'action', text: call.text, reason: `"${action.action}" is not in the ${opts.grammar} action space` });
    }
    out.actions.push(action);
  }
  if (out.actions.length === 0 && !issues.some((i) => i.kind === 'action')) {
    issues.push({ kind: 'action', text: actionText.slice(0, 80), reason: 'no action call found' });
  }
  return out;
}

interface RawCall {
  name: string;
  args: [string | undefined, string][];
  text: string;
}

/** Read `name(key='value', …)` calls one after another. */
function scanCalls(s: string, issues: ParseIssue[]): RawCall[] {
  const calls: RawCall[] = [];
  let i = 0;
  while (i < s.length) {
    while (i < s.length && /[\s,;]/.test(s[i]!)) i++;
    if (i >= s.length) break;
    const head = /^([A-Za-z_][\w.]*)\s*\(/.exec(s.slice(i));
    if (!head) {
      const eol = s.indexOf('\n', i);
      const junk = s.slice(i, eol < 0 ? s.length : eol);
      issues.push({ kind: 'action', text: junk.slice(0, 80), reason: 'not an action call' });
      i = eol < 0 ? s.length : eol + 1;
      continue;
    }
    const start = i;
    i += head[0].length;
    const args: [string | undefined, string][] = [];
    let closed = false;
    while (i < s.length) {
      while (i < s.length && /[\s,]/.test(s[i]!)) i++;
      if (s[i] === ')') {
        i++;
        closed = true;
        break;
      }
      const kv = /^([A-Za-z_]\w*)\s*=\s*/.exec(s.slice(i));
      const key = kv ? kv[1]!.toLowerCase() : undefined;
      if (kv) i += kv[0].length;
      const q = s[i];
      if (q === "'" || q === '"') {
        const end = findClosingQuote(s, i + 1, q);
        if (end < 0) {
          args.push([key, s.slice(i + 1)]);
          i = s.length;
          break;
        }
        args.push([key, s.slice(i + 1, end)]);
        i = end + 1;
      } else {
        const m = /^[^,)\n]*/.exec(s.slice(i))!;
        args.push([key, m[0].trim()]);
        i += m[0].length;
        if (m[0].length === 0 && s[i] === '\n') break;
      }
    }
    const text = s.slice(start, i).trim();
    if (!closed) issues.push({ kind: 'action', text: text.slice(0, 80), reason: 'action call is not closed' });
    calls.push({ name: head[1]!.toLowerCase(), args, text });
  }
  return calls;
}

/**
 * The closing quote is the first unescaped quote followed by "," or ")" (models do
 * not always escape apostrophes inside typed text).
 */
function findClosingQuote(s: string, from: number, q: string): number {
  for (let j = from; j < s.length; j++) {
    if (s[j] === '\\') {
      j++;
      continue;
    }
    if (s[j] === q && /^\s*[,)]/.test(s.slice(j + 1, j + 40))) return j;
  }
  return -1;
}

function unescapeContent(v: string): string {
  return v.replace(/\\(.)/gs, (_, c: string) => (c === 'n' ? '\n' : c === 't' ? '\t' : c));
}

function buildAction(call: RawCall, opts: GuiParseOptions, issues: ParseIssue[]): GuiAction {
  const args: Record<string, string> = {};
  call.args.forEach(([k, v], idx) => {
    if (v === '' && k) return; // the cookbook drops empty-string arguments
    const name = k ? (ARG_ALIASES[k] ?? k) : idx === 0 ? 'start' : `arg${idx}`;
    args[name] = v;
  });
  const a: GuiAction = { action: call.name, args, text: call.text };
  for (const which of ['start', 'end'] as const) {
    const v = args[which];
    if (v === undefined) continue;
    const c = readCoord(v, opts);
    if (c) a[which] = c;
    else issues.push({ kind: 'action', text: call.text.slice(0, 80), reason: `cannot read coordinates "${v}"` });
  }
  if (args['content'] !== undefined) {
    const content = unescapeContent(args['content']);
    if (call.name === 'type' && content.endsWith('\n')) {
      a.submit = true;
      a.content = content.replace(/\n$/, '');
    } else a.content = content;
  }
  if (args['key'] !== undefined) a.keys = args['key'].trim().toLowerCase().split(/\s+/).filter(Boolean);
  if (args['direction'] !== undefined) a.direction = args['direction'].trim().toLowerCase();
  if (args['app_name'] !== undefined) a.appName = args['app_name'];
  return a;
}

function readCoord(v: string, opts: GuiParseOptions): GuiCoord | undefined {
  const body = v.replace(/<\/?\s*(?:point|bbox)\s*>/gi, ' ').replace(/[()[\]]/g, ' ');
  const parts = body.split(/[\s,，]+/).filter(Boolean);
  if (!(parts.length === 2 || parts.length === 4) || !parts.every((p) => /^[+-]?(?:\d+\.?\d*|\.\d+)$/.test(p))) return undefined;
  const raw = parts.map(Number);
  const four = raw.length === 2 ? [raw[0]!, raw[1]!, raw[0]!, raw[1]!] : raw;
  const space = opts.space ?? SEED_COORDS;
  const nx = (x: number) => (space.kind === 'relative' ? x / space.scale : x / space.width);
  const ny = (y: number) => (space.kind === 'relative' ? y / space.scale : y / space.height);
  const box: [number, number, number, number] = [nx(four[0]!), ny(four[1]!), nx(four[2]!), ny(four[3]!)];
  const c: GuiCoord = { raw, box };
  if (opts.size) c.pixel = { x: ((box[0] + box[2]) / 2) * opts.size.width, y: ((box[1] + box[3]) / 2) * opts.size.height };
  return c;
}
