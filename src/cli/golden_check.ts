/**
 * `seedvl golden-check <golden-dir> [--json]`: runs every model and case of a
 * directory laid out like shared/golden/ and prints, per case, the largest
 * difference of the vision outputs, the hidden states and the logits against
 * the reference, and whether greedy decoding (KV cache and full recompute)
 * reproduces the reference ids. Exit 0 when every case is within tolerance.
 */
import { parseArgs } from 'node:util';
import { runGolden, groupMax, type GoldenReport } from '../models/qwen_vl/golden.ts';
import type { CaseResult } from '../models/qwen_vl/golden_case.ts';

const HELP = `usage: seedvl golden-check <golden-dir> [options]

Checks the Qwen-VL implementation against reference outputs (layout: shared/golden/README.md):
every <name>/model/ checkpoint with its <name>/cases/*.json + .safetensors.

options:
  --json                 one JSON report (every tensor's max abs difference, every exact check)
  --tol X                absolute tolerance for float tensors (default 1e-4, the README's)
  --weights stored|f32   matrices as stored (bf16, read by the bf16 kernels; default) or f32 copies
  --model NAME           only model folders containing NAME (repeatable)
  --case NAME            only cases containing NAME (repeatable)
  --verbose              every compared tensor and exact check, not just the summary row

exit codes: 0 all cases pass, 1 a case fails, 2 usage error`;

const fmt = (v: number | null): string => (v === null ? '-' : Number.isNaN(v) ? 'NaN' : v.toExponential(1));

function row(model: string, r: CaseResult): string {
  const vision = groupMax(r, /^vision/);
  const hidden = groupMax(r, /^text\./);
  const logits = groupMax(r, /logits|generate/);
  const g = r.greedy;
  const greedy = !g ? '-' : `${sameRows(g.cached, g.reference) ? 'ok' : 'DIFF'}/${sameRows(g.recompute, g.reference) ? 'ok' : 'DIFF'}`;
  const exactBad = r.exact.filter((e) => !e.ok).length;
  const status = r.error ? 'ERROR' : r.ok ? 'pass' : 'FAIL';
  return [model.padEnd(20), r.case.padEnd(16), fmt(vision).padStart(8), fmt(hidden).padStart(8), fmt(logits).padStart(8),
    greedy.padStart(8), String(r.exact.length - exactBad).padStart(3) + `/${r.exact.length}`.padEnd(4), `${(r.ms / 1000).toFixed(1)}s`.padStart(6), status].join('  ');
}

const sameRows = (a: number[][], b: number[][]): boolean => JSON.stringify(a) === JSON.stringify(b);

function details(r: CaseResult): string[] {
  const out: string[] = [];
  for (const d of r.diffs) out.push(`    ${d.ok ? ' ' : '!'} ${d.name.padEnd(40)} ${fmt(d.maxAbs)} (tol ${d.tol})`);
  for (const e of r.exact) out.push(`    ${e.ok ? ' ' : '!'} ${e.name.padEnd(40)} ${e.ok ? 'exact' : 'MISMATCH'}${e.detail ? ` — ${e.detail}` : ''}`);
  if (r.error) out.push(`    ! error: ${r.error}`);
  return out;
}

export async function goldenCheckCommand(argv: string[]): Promise<number> {
  let a;
  try {
    a = parseArgs({
      args: argv, allowPositionals: true, strict: true,
      options: {
        json: { type: 'boolean' }, tol: { type: 'string' }, weights: { type: 'string' }, verbose: { type: 'boolean' },
        model: { type: 'string', multiple: true }, case: { type: 'string', multiple: true }, help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (e) {
    console.error(`seedvl golden-check: ${(e as Error).message}\n\n${HELP}`);
    return 2;
  }
  if (a.values.help) {
    console.log(HELP);
    return 0;
  }
  if (a.positionals.length !== 1) {
    console.error(`seedvl golden-check: give exactly one golden directory\n\n${HELP}`);
    return 2;
  }
  const tol = a.values.tol === undefined ? 1e-4 : Number(a.values.tol);
  if (!(tol >= 0)) {
    console.error(`seedvl golden-check: --tol must be a non-negative number, got '${a.values.tol}'`);
    return 2;
  }
  const w = a.values.weights ?? 'stored';
  if (!['stored', 'f32', 'float32'].includes(w)) {
    console.error(`seedvl golden-check: --weights must be stored or f32, got '${w}'`);
    return 2;
  }
  const json = !!a.values.json;
  if (!json) {
    console.log(`${'model'.padEnd(20)}  ${'case'.padEnd(16)}  ${'vision'.padStart(8)}  ${'hidden'.padStart(8)}  ${'logits'.padStart(8)}  ${'greedy'.padStart(8)}  exact   time  status`);
  }
  let report: GoldenReport;
  try {
    report = runGolden(a.positionals[0], {
      tol, weights: w === 'stored' ? 'stored' : 'float32', models: a.values.model, cases: a.values.case,
      onCase: json ? undefined : (m, r) => {
        console.log(row(m, r));
        if (a.values.verbose || !r.ok) for (const l of details(r)) console.log(l);
      },
    });
  } catch (e) {
    console.error(`seedvl golden-check: ${(e as Error).message}`);
    return 2;
  }
  if (json) {
    console.log(JSON.stringify(report));
  } else {
    for (const m of report.models) if (m.error) console.log(`${m.name.padEnd(20)}  ERROR loading the model: ${m.error}`);
    const cases = report.models.reduce((n, m) => n + m.cases.length, 0);
    const failed = report.models.reduce((n, m) => n + m.cases.filter((c) => !c.ok).length + (m.error ? 1 : 0), 0);
    console.log(`\n${cases} case(s) in ${report.models.length} model(s), ${failed} failing; tolerance ${tol} (max abs), weights ${report.weights}; ${(report.ms / 1000).toFixed(1)} s`);
    console.log('columns: largest max-abs difference over vision.* / text.* (hidden states) / logits and generation-step logits; greedy ids with KV cache / full recompute; exact integer checks passed');
  }
  return report.ok ? 0 : 1;
}
