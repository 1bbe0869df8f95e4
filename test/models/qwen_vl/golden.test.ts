/**
 * `seedvl golden-check` on shared/golden: every family and case must match the
 * Hugging Face reference within the README's tolerances; and a tampered copy
 * must fail (the check can fail).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runGolden, discoverGolden } from '../../../src/models/qwen_vl/golden.ts';
import { goldenCheckCommand } from '../../../src/cli/golden_check.ts';
import { GOLDEN, goldenAvailable, tempDir } from './_helpers.ts';

const skip = goldenAvailable ? false : 'shared/golden is not present';

test('golden-check: every family and case of shared/golden passes', { skip }, () => {
  const report = runGolden(GOLDEN);
  const families = report.models.map((m) => m.family).sort();
  assert.deepEqual(families, ['qwen2_5_vl', 'qwen2_vl', 'qwen3_vl_moe']);
  const cases = report.models.flatMap((m) => m.cases.map((c) => `${m.name}/${c.case}`));
  assert.equal(cases.length, discoverGolden(GOLDEN).reduce((n, e) => n + e.cases.length, 0));
  for (const m of report.models) {
    assert.equal(m.error, undefined, `${m.name}: ${m.error}`);
    for (const c of m.cases) {
      const bad = [...c.diffs.filter((d) => !d.ok).map((d) => `${d.name} ${d.maxAbs}`), ...c.exact.filter((e) => !e.ok).map((e) => `${e.name}: ${e.detail}`)];
      assert.ok(c.ok, `${m.name}/${c.case}: ${c.error ?? bad.join('; ')}`);
      // Every case compares hidden states and logits, and decodes greedily both ways.
      assert.ok(c.diffs.some((d) => d.name === 'text.final_norm_out'), `${c.case}: final norm compared`);
      assert.ok(c.diffs.some((d) => d.name === 'logits.last'), `${c.case}: logits compared`);
      assert.ok(c.exact.some((e) => e.name === 'generated_ids (KV cache)' && e.ok));
      assert.ok(c.exact.some((e) => e.name === 'generated_ids (full recompute)' && e.ok));
      if (c.case !== 'text_only') assert.ok(c.diffs.some((d) => /^vision(_video)?\.out$/.test(d.name)), `${c.case}: vision output compared`);
    }
  }
  // The Qwen2.5-VL video case also checks the other position convention (refpos.*).
  const video = report.models.find((m) => m.family === 'qwen2_5_vl')!.cases.find((c) => c.case === 'video')!;
  assert.ok(video.exact.some((e) => e.name === 'refpos.generated_ids (KV cache)' && e.ok));
  assert.ok(report.ok);
});

test('golden-check: f32 weight copies give the same prefill as the bf16 kernels', { skip }, () => {
  const a = runGolden(GOLDEN, { models: ['qwen3_vl_moe'], cases: ['one_image'] });
  const b = runGolden(GOLDEN, { models: ['qwen3_vl_moe'], cases: ['one_image'], weights: 'float32' });
  const pick = (r: typeof a, name: string) => r.models[0].cases[0].diffs.find((d) => d.name === name)!.maxAbs;
  for (const n of ['vision.out', 'text.layers.0.out', 'text.final_norm_out', 'logits.subset']) assert.equal(pick(a, n), pick(b, n), n);
});

test('golden-check command: exit 1 and a named failure when a reference value is off', { skip }, async () => {
  const dir = tempDir('golden');
  cpSync(join(GOLDEN, 'qwen2_vl_tiny'), join(dir, 'qwen2_vl_tiny'), { recursive: true });
  const file = join(dir, 'qwen2_vl_tiny/cases/one_image.json');
  const j = JSON.parse(readFileSync(file, 'utf8'));
  j.generated_ids[0][2] += 1;
  j.position_ids[1][0][16] += 1;
  writeFileSync(file, JSON.stringify(j));
  const lines: string[] = [];
  const log = console.log;
  console.log = (s: string) => lines.push(String(s));
  let code: number;
  try {
    code = await goldenCheckCommand([dir, '--json', '--case', 'one_image']);
  } finally {
    console.log = log;
  }
  assert.equal(code, 1);
  const report = JSON.parse(lines.join('\n'));
  const c = report.models[0].cases[0];
  assert.equal(c.ok, false);
  const bad = c.exact.filter((e: { ok: boolean }) => !e.ok).map((e: { name: string }) => e.name);
  assert.ok(bad.includes('position_ids'), bad.join(','));
  assert.ok(bad.includes('generated_ids (KV cache)'), bad.join(','));
});

test('golden-check command: table output and exit 0 on shared/golden', { skip }, async () => {
  const lines: string[] = [];
  const log = console.log;
  console.log = (s: string) => lines.push(String(s));
  let code: number;
  try {
    code = await goldenCheckCommand([GOLDEN, '--case', 'text_only']);
  } finally {
    console.log = log;
  }
  assert.equal(code, 0, lines.join('\n'));
  const rows = lines.filter((l) => /text_only/.test(l));
  assert.equal(rows.length, 3);
  for (const r of rows) assert.match(r, /ok\/ok .* pass$/);
});

test('golden-check command: usage errors exit 2', async () => {
  const err = console.error;
  console.error = () => undefined;
  try {
    assert.equal(await goldenCheckCommand([]), 2);
    assert.equal(await goldenCheckCommand(['/nonexistent/golden']), 2);
    assert.equal(await goldenCheckCommand(['x', '--weights', 'fp8']), 2);
  } finally {
    console.error = err;
  }
});
