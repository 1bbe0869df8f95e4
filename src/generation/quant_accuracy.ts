/**
 * The accuracy cost of a weight format: a candidate model (e.g. int4) against
 * a reference (e.g. bf16/f32) on the same prompts. Both are teacher-forced on
 * the reference's greedy continuation, so every step compares logits for the
 * same context:
 *   - relative RMS logit difference ‖Δ‖/‖ref‖ and max |Δ|;
 *   - top-1 agreement: share of steps where both pick the same next token;
 *   - greedy agreement: tokens the candidate's own greedy decode shares with
 *     the reference's before the first difference (mean share per prompt).
 */
import { tidy } from '../tensor/index.ts';
import type { GenerationModel } from './model.ts';
import type { TokenDecoder } from './detokenizer.ts';

export interface AccuracyReport {
  prompts: number;
  steps: number;
  relRmsLogitDiff: number;
  maxAbsLogitDiff: number;
  top1Agreement: number;
  greedyPrefixAgreement: number;
}

export const DEFAULT_PROMPTS = [
  'The capital of France is',
  'Describe the picture in one sentence:',
  '1, 2, 3, 4,',
  'def add(a, b):',
];

function argmax(x: Float32Array): number {
  let best = 0;
  for (let i = 1; i < x.length; i++) if (x[i]! > x[best]!) best = i;
  return best;
}

/** Logit rows for prompt + forced tokens (one row per generated position), or greedy when `forced` is null. */
function rollout(m: GenerationModel, prompt: Int32Array, steps: number, forced: number[] | null): { rows: Float32Array[]; tokens: number[] } {
  const cache = m.createCache(prompt.length + steps + 1);
  const rows: Float32Array[] = [];
  const tokens: number[] = [];
  try {
    let row = tidy(() => Float32Array.from(m.prefill({ inputIds: prompt }, cache).data<Float32Array>()));
    for (let i = 0; i < steps; i++) {
      rows.push(row);
      const tok = forced ? forced[i]! : argmax(row);
      tokens.push(tok);
      if (i + 1 < steps) row = tidy(() => Float32Array.from(m.decode(Int32Array.of(tok), [cache]).data<Float32Array>()));
    }
  } finally {
    cache.dispose();
  }
  return { rows, tokens };
}

export function compareModels(ref: GenerationModel, cand: GenerationModel, tok: TokenDecoder & { encode(t: string): number[] },
  o: { steps?: number; prompts?: string[] } = {}): AccuracyReport {
  const steps = o.steps ?? 32;
  const prompts = o.prompts ?? DEFAULT_PROMPTS;
  let d2 = 0, r2 = 0, maxAbs = 0, agree = 0, total = 0, prefix = 0;
  for (const p of prompts) {
    const ids = Int32Array.from(tok.encode(p));
    const a = rollout(ref, ids, steps, null);
    const b = rollout(cand, ids, steps, a.tokens);
    a.rows.forEach((ra, i) => {
      const rb = b.rows[i]!;
      for (let v = 0; v < ra.length; v++) {
        const d = rb[v]! - ra[v]!;
        d2 += d * d;
        r2 += ra[v]! * ra[v]!;
        maxAbs = Math.max(maxAbs, Math.abs(d));
      }
      if (argmax(ra) === argmax(rb)) agree++;
      total++;
    });
    const own = rollout(cand, ids, steps, null).tokens;
    let n = 0;
    while (n < steps && own[n] === a.tokens[n]) n++;
    prefix += n / steps;
  }
  return {
    prompts: prompts.length,
    steps,
    relRmsLogitDiff: +Math.sqrt(d2 / Math.max(r2, 1e-30)).toPrecision(4),
    maxAbsLogitDiff: +maxAbs.toPrecision(4),
    top1Agreement: +(agree / total).toFixed(4),
    greedyPrefixAgreement: +(prefix / prompts.length).toFixed(4),
  };
}
