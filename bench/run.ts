/**
 * Benchmark runner: `npm run bench [-- --json] [-- --only NAME]`.
 * Measures the machine limits once, then runs every bench exported by a
 * bench/*.bench.ts file (filtered by --only: a substring of "file:bench"),
 * printing a table or, with --json, one JSON object per line.
 */
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { makeResult, timeAsync, timeSync, type Bench, type BenchContext, type BenchResult } from './harness.ts';
import { measureLimits } from './limits.ts';

function parseArgs(argv: string[]): { json: boolean; only: string | null } {
  let json = false;
  let only: string | null = null;
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--json') json = true;
    else if (argv[i] === '--only') only = argv[++i] ?? null;
    else if (argv[i].startsWith('--only=')) only = argv[i].slice('--only='.length);
    else throw new Error(`bench: unknown argument '${argv[i]}' (expected --json, --only NAME)`);
  }
  return { json, only };
}

function fmtNum(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  const a = Math.abs(v);
  return a >= 100 ? v.toFixed(1) : a >= 1 ? v.toFixed(2) : v.toPrecision(3);
}

class Printer {
  private rows: BenchResult[] = [];
  constructor(private readonly json: boolean) {}
  emit(r: BenchResult): void {
    if (this.json) process.stdout.write(JSON.stringify(r) + '\n');
    else {
      this.rows.push(r);
      const ratio = r.ratio == null ? '' : `  ${r.ratio.toFixed(3)} of ${r.ratio_to}`;
      process.stdout.write(`${r.bench.padEnd(14)} ${r.metric.padEnd(40)} ${fmtNum(r.value).padStart(10)} ${r.unit.padEnd(8)}${ratio}\n`);
    }
  }
  note(msg: string): void {
    (this.json ? process.stderr : process.stdout).write(`# ${msg}\n`);
  }
}

async function loadBenches(dir: string, only: string | null, out: Printer): Promise<{ file: string; bench: Bench }[]> {
  const files = readdirSync(dir).filter((f) => f.endsWith('.bench.ts')).sort();
  const all: { file: string; bench: Bench }[] = [];
  for (const f of files) {
    const group = f.slice(0, -'.bench.ts'.length);
    try {
      const mod = (await import(pathToFileURL(join(dir, f)).href)) as { benches?: Bench[] };
      for (const bench of mod.benches ?? []) {
        if (!only || `${group}:${bench.name}`.includes(only)) all.push({ file: group, bench });
      }
    } catch (e) {
      out.note(`could not load ${f}: ${(e as Error).message}`);
    }
  }
  return all;
}

async function main(): Promise<void> {
  const { json, only } = parseArgs(process.argv.slice(2));
  const out = new Printer(json);
  const dir = dirname(fileURLToPath(import.meta.url));
  const benches = await loadBenches(dir, only, out);
  if (benches.length === 0) out.note(`no bench matches --only ${only}`);
  out.note('measuring machine limits (FMA peak, DRAM read bandwidth)...');
  const { limits, lines } = measureLimits();
  for (const l of lines) out.emit(l);
  const ctx: BenchContext = {
    limits,
    time: timeSync,
    timeAsync,
    result: makeResult,
    note: (m) => out.note(m),
  };
  let failed = 0;
  for (const { file, bench } of benches) {
    out.note(`${file}:${bench.name}`);
    try {
      for (const r of await bench.run(ctx)) out.emit(r);
    } catch (e) {
      failed++;
      out.note(`FAILED ${file}:${bench.name}: ${(e as Error).stack ?? e}`);
    }
  }
  if (failed) process.exitCode = 1;
}

main().catch((e) => {
  process.stderr.write(`bench: ${(e as Error).stack ?? e}\n`);
  process.exit(1);
});
