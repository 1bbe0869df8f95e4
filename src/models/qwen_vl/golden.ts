/**
 * Golden checks over a directory laid out like shared/golden/: every
 * `<name>/model/` (a Hub-style checkpoint) with its `<name>/cases/<case>.json`
 * + `.safetensors`. Works on any such directory; the family comes from each
 * model's config.json, and a case is checked on whatever tensors and fields
 * it holds.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { openSafetensors } from '../../io/safetensors.ts';
import { loadQwenModel } from './load.ts';
import { checkGoldenCase, type CaseResult } from './golden_case.ts';

export interface GoldenModelEntry {
  /** Folder name, e.g. qwen2_vl_tiny. */
  name: string;
  modelDir: string;
  cases: { name: string; json: string; tensors: string }[];
}

export interface GoldenModelResult {
  name: string;
  family: string | null;
  cases: CaseResult[];
  /** Loading failed. */
  error?: string;
}

export interface GoldenReport {
  dir: string;
  tolerance: number;
  weights: 'stored' | 'float32';
  models: GoldenModelResult[];
  ok: boolean;
  ms: number;
}

export interface GoldenOptions {
  tol?: number;
  /** 'stored' (default: bf16 matrices through the bf16 kernels) or 'float32' copies. */
  weights?: 'stored' | 'float32';
  /** Only these model folders / cases (substring match). */
  models?: string[];
  cases?: string[];
  onCase?: (model: string, r: CaseResult) => void;
}

/** Model folders with a model/config.json and a cases/ folder; throws if there are none. */
export function discoverGolden(dirIn: string): GoldenModelEntry[] {
  const dir = resolve(dirIn);
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new Error(`golden-check: ${dir} is not a directory`);
  const out: GoldenModelEntry[] = [];
  for (const name of readdirSync(dir).sort()) {
    const modelDir = join(dir, name, 'model');
    const casesDir = join(dir, name, 'cases');
    if (!existsSync(join(modelDir, 'config.json')) || !existsSync(casesDir)) continue;
    const cases = readdirSync(casesDir)
      .filter((f) => f.endsWith('.json'))
      .sort()
      .map((f) => ({ name: f.slice(0, -5), json: join(casesDir, f), tensors: join(casesDir, f.replace(/\.json$/, '.safetensors')) }));
    out.push({ name, modelDir, cases });
  }
  if (!out.length) throw new Error(`golden-check: ${dir} holds no <name>/model/config.json with a <name>/cases/ folder (see shared/golden/README.md)`);
  return out;
}

export function runGolden(dir: string, opts: GoldenOptions = {}): GoldenReport {
  const t0 = performance.now();
  const tol = opts.tol ?? 1e-4;
  const weights = opts.weights ?? 'stored';
  const models: GoldenModelResult[] = [];
  const pick = (filter: string[] | undefined, name: string): boolean => !filter?.length || filter.some((f) => name.includes(f));
  for (const entry of discoverGolden(dir)) {
    if (!pick(opts.models, entry.name)) continue;
    let loaded;
    try {
      loaded = loadQwenModel(entry.modelDir, { weights });
    } catch (e) {
      models.push({ name: entry.name, family: null, cases: [], error: (e as Error).message });
      continue;
    }
    const result: GoldenModelResult = { name: entry.name, family: loaded.config.family, cases: [] };
    try {
      for (const c of entry.cases) {
        if (!pick(opts.cases, c.name)) continue;
        let r: CaseResult;
        if (!existsSync(c.tensors)) {
          r = { case: c.name, diffs: [], exact: [], greedy: null, ok: false, ms: 0, error: `${c.tensors}: file not found` };
        } else {
          const st = openSafetensors(c.tensors);
          try {
            const j = JSON.parse(readFileSync(c.json, 'utf8')) as Record<string, unknown>;
            r = checkGoldenCase(loaded.model, c.name, j, st, { tol });
          } catch (e) {
            r = { case: c.name, diffs: [], exact: [], greedy: null, ok: false, ms: 0, error: `${c.json}: ${(e as Error).message}` };
          } finally {
            st.close();
          }
        }
        result.cases.push(r);
        opts.onCase?.(entry.name, r);
      }
    } finally {
      loaded.model.dispose();
    }
    models.push(result);
  }
  const ok = models.length > 0 && models.every((m) => !m.error && m.cases.length > 0 && m.cases.every((c) => c.ok));
  return { dir: resolve(dir), tolerance: tol, weights, models, ok, ms: performance.now() - t0 };
}

/** The largest difference among the tensors whose names match `re`, or null if none were compared. */
export function groupMax(r: CaseResult, re: RegExp): number | null {
  const ds = r.diffs.filter((d) => re.test(d.name));
  if (!ds.length) return null;
  return ds.reduce((m, d) => (Number.isNaN(d.maxAbs) || Number.isNaN(m) ? NaN : Math.max(m, d.maxAbs)), 0);
}
