/**
 * The accuracy cost of int8/int4 weights on Qwen-VL golden cases
 * (shared/golden/<model>/cases/*.json + .safetensors): the same model loaded
 * with its stored (bf16) weights is the reference, a second copy quantised by
 * quantizeQwenModel is the candidate; both see the case's input ids and
 * pixel values (images, videos), with the golden position convention.
 *   - last-position logits: max and mean |Δ| over the vocabulary at each row's
 *     last prompt token, and both relative to the reference logits' std there;
 *   - top-1 agreement: share of all prompt positions where both argmaxes match;
 *   - greedy, `steps` tokens: teacher-forced (the candidate is fed the
 *     reference's greedy tokens; share of steps whose argmax matches) and
 *     free-running (the candidate decodes its own tokens; share of steps
 *     before the first difference, mean over rows).
 */
import { existsSync, readFileSync } from 'node:fs';
import { openSafetensors, type SafetensorsFile } from '../io/safetensors.ts';
import { tidy, argmax, indexSelect, type Tensor } from '../tensor/index.ts';
import { loadQwenModel } from '../models/qwen_vl/load.ts';
import type { QwenVLModel, VisionBatch } from '../models/qwen_vl/model.ts';
import { discoverGolden } from '../models/qwen_vl/golden.ts';
import { tokenMap, flatInts } from '../models/qwen_vl/golden_compare.ts';
import { quantizeQwenModel } from '../models/qwen_vl/quantize.ts';
import type { QuantBits } from '../tensor/ops/quant.ts';

export interface QwenCaseAccuracy {
  model: string;
  case: string;
  bits: QuantBits;
  /** Prompt positions compared for top-1 (all rows). */
  positions: number;
  lastMaxAbs: number;
  lastMeanAbs: number;
  /** Std of the reference logits at the last prompt positions. */
  refStd: number;
  top1: number;
  teacherForced: number;
  freeRunning: number;
}

type Json = Record<string, unknown>;

export interface CaseInputs {
  ids: Int32Array;
  rowLengths: number[];
  images?: VisionBatch;
  videos?: VisionBatch;
}

const grids = (v: unknown) => ((v ?? []) as number[][]).map(([t, h, w]) => ({ t: t!, h: h!, w: w! }));

/** The case's packed ids (pads dropped) and media. The caller disposes the pixel tensors. */
export function caseInputs(j: Json, st: SafetensorsFile): CaseInputs {
  const inputIds = j['input_ids'] as number[][];
  const mask = (j['attention_mask'] as number[][] | undefined) ?? inputIds.map((r) => r.map(() => 1));
  const map = tokenMap(mask);
  const ids = Int32Array.from(map.flat, (f) => inputIds[Math.floor(f / map.S)]![f % map.S]!);
  const out: CaseInputs = { ids, rowLengths: map.rowLengths };
  if (j['image_grid_thw']) out.images = { pixelValues: st.get('pixel_values'), grids: grids(j['image_grid_thw']) };
  if (j['video_grid_thw']) {
    out.videos = {
      pixelValues: st.get('pixel_values_videos'), grids: grids(j['video_grid_thw']),
      ...(j['second_per_grid_ts'] ? { secondPerGrid: j['second_per_grid_ts'] as number[] } : {}),
    };
  }
  return out;
}

export interface Run {
  /** Argmax at every prompt position [T]. */
  top1: number[];
  /** Logits at each row's last prompt position, [B·V]. */
  last: Float32Array;
  /** Greedy argmax per step per row: [steps][B]. */
  steps: number[][];
}

/** Prefill (all logits) then `steps` decode steps, fed `forced[step]` or the own argmax. */
export function qwenRollout(model: QwenVLModel, inp: CaseInputs, steps: number, forced: number[][] | null): Run {
  const B = inp.rowLengths.length;
  const cache = model.createCache(B, Math.max(...inp.rowLengths) + steps + 1);
  try {
    const lastRows: number[] = [];
    let off = 0;
    for (const n of inp.rowLengths) lastRows.push((off += n) - 1);
    const { top1, last } = tidy(() => {
      const all = model.prefill(cache, { inputIds: inp.ids, rowLengths: inp.rowLengths, images: inp.images, videos: inp.videos }, { allLogits: true, convention: 'transformers' });
      return { top1: flatInts(argmax(all, -1).toArray()), last: Float32Array.from(indexSelect(all, 0, lastRows).toArray() as number[]) };
    });
    const out: number[][] = [];
    let logits: Tensor | null = null;
    for (let s = 0; s < steps; s++) {
      const picked = s === 0
        ? Array.from({ length: B }, (_, b) => top1[lastRows[b]!]!)
        : tidy(() => flatInts(argmax(logits!, -1).toArray()));
      logits?.dispose();
      logits = null;
      out.push(picked);
      if (s + 1 < steps) logits = model.decode(cache, forced ? forced[s]! : picked);
    }
    return { top1, last, steps: out };
  } finally {
    cache.dispose();
  }
}

/** One case, one candidate against the reference run. */
export function compareQwenCase(refRun: Run, cand: QwenVLModel, inp: CaseInputs, steps: number): Omit<QwenCaseAccuracy, 'model' | 'case' | 'bits'> {
  const tf = qwenRollout(cand, inp, steps, refRun.steps);
  const free = qwenRollout(cand, inp, steps, null);
  let maxAbs = 0, sumAbs = 0, sum = 0, sum2 = 0;
  const n = refRun.last.length;
  for (let i = 0; i < n; i++) {
    const r = refRun.last[i]!, d = Math.abs(tf.last[i]! - r);
    maxAbs = Math.max(maxAbs, d);
    sumAbs += d;
    sum += r;
    sum2 += r * r;
  }
  const mean = sum / n;
  const agree = refRun.top1.filter((t, i) => t === tf.top1[i]).length;
  const B = inp.rowLengths.length;
  let tfAgree = 0, prefix = 0;
  for (let b = 0; b < B; b++) {
    let k = 0;
    while (k < steps && free.steps[k]![b] === refRun.steps[k]![b]) k++;
    prefix += k / steps;
    for (let s = 0; s < steps; s++) if (tf.steps[s]![b] === refRun.steps[s]![b]) tfAgree++;
  }
  return {
    positions: refRun.top1.length,
    lastMaxAbs: maxAbs,
    lastMeanAbs: sumAbs / n,
    refStd: Math.sqrt(Math.max(sum2 / n - mean * mean, 0)),
    top1: agree / refRun.top1.length,
    teacherForced: tfAgree / (B * steps),
    freeRunning: prefix / B,
  };
}

export interface QwenAccuracyOptions {
  bits?: QuantBits[];
  steps?: number;
  /** Only these model folders / cases (substring match). */
  models?: string[];
  cases?: string[];
  onRow?: (r: QwenCaseAccuracy) => void;
}

/** Every golden model × case × bits under `dir` (laid out like shared/golden/). */
export function qwenQuantAccuracy(dir: string, o: QwenAccuracyOptions = {}): QwenCaseAccuracy[] {
  const bitsList = o.bits ?? [8, 4];
  const steps = o.steps ?? 5;
  const pick = (f: string[] | undefined, name: string) => !f?.length || f.some((x) => name.includes(x));
  const rows: QwenCaseAccuracy[] = [];
  for (const entry of discoverGolden(dir)) {
    if (!pick(o.models, entry.name)) continue;
    const ref = loadQwenModel(entry.modelDir, { weights: 'stored' }).model;
    const cands = bitsList.map((bits) => {
      const m = loadQwenModel(entry.modelDir, { weights: 'stored' }).model;
      quantizeQwenModel(m, { bits });
      return { bits, m };
    });
    try {
      for (const c of entry.cases) {
        if (!pick(o.cases, c.name) || !existsSync(c.tensors)) continue;
        const st = openSafetensors(c.tensors);
        const inp = caseInputs(JSON.parse(readFileSync(c.json, 'utf8')) as Json, st);
        try {
          const refRun = qwenRollout(ref, inp, steps, null);
          for (const { bits, m } of cands) {
            const row = { model: entry.name, case: c.name, bits, ...compareQwenCase(refRun, m, inp, steps) };
            rows.push(row);
            o.onRow?.(row);
          }
        } finally {
          inp.images?.pixelValues.dispose();
          inp.videos?.pixelValues.dispose();
          st.close();
        }
      }
    } finally {
      ref.dispose();
      for (const c of cands) c.m.dispose();
    }
  }
  return rows;
}

const f = (x: number, d = 3) => x.toFixed(d);

/** A markdown table of the rows. */
export function qwenAccuracyTable(rows: QwenCaseAccuracy[]): string {
  const lines = [
    '| model | case | bits | positions | max abs Δ (last) | mean abs Δ (last) | ref std | max/std | mean/std | top-1 | greedy TF | greedy free |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|',
  ];
  for (const r of rows) {
    lines.push(`| ${r.model} | ${r.case} | int${r.bits} | ${r.positions} | ${r.lastMaxAbs.toExponential(2)} | ${r.lastMeanAbs.toExponential(2)} | ${r.refStd.toExponential(2)} | ${f(r.lastMaxAbs / r.refStd)} | ${f(r.lastMeanAbs / r.refStd)} | ${f(r.top1)} | ${f(r.teacherForced, 2)} | ${f(r.freeRunning, 2)} |`);
  }
  return lines.join('\n');
}
