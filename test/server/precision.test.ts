/** `--precision` of run/chat/serve: which product arithmetic a checkpoint gets. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { choosePrecision, UsageError } from '../../src/cli/model_args.ts';
import { native } from '../../src/tensor/native.ts';

function dirWith(config: Record<string, unknown>): string {
  const d = mkdtempSync(join(tmpdir(), 'seedvl-precision-'));
  writeFileSync(join(d, 'config.json'), JSON.stringify(config));
  return d;
}

test('--precision: explicit values win, auto follows the stored dtype and AMX', () => {
  const saved = process.env['SEEDVL_MATMUL_PRECISION'];
  delete process.env['SEEDVL_MATMUL_PRECISION'];
  const bf16Top = dirWith({ model_type: 'qwen2_5_vl', torch_dtype: 'bfloat16' });
  const bf16Text = dirWith({ model_type: 'qwen3_vl', text_config: { dtype: 'bfloat16' } });
  const f32 = dirWith({ model_type: 'seed_vl', torch_dtype: 'float32' });
  try {
    assert.equal(choosePrecision('f32', bf16Top), 'f32');
    assert.equal(choosePrecision('bf16', f32), 'bf16');
    const amx = native.cpu.amxBf16 ? 'bf16' : 'f32';
    assert.equal(choosePrecision(undefined, bf16Top), amx);
    assert.equal(choosePrecision('auto', bf16Text), amx);
    assert.equal(choosePrecision(undefined, f32), 'f32');
    assert.equal(choosePrecision(undefined, undefined), 'f32', 'presets (f32 weights) stay f32');
    assert.equal(choosePrecision(undefined, '/nonexistent/dir'), 'f32');
    process.env['SEEDVL_MATMUL_PRECISION'] = 'f32';
    assert.equal(choosePrecision(undefined, bf16Top), 'f32', 'the environment variable sets the default');
    assert.throws(() => choosePrecision('fp16', bf16Top), (e: unknown) => e instanceof UsageError && /--precision must be auto, f32 or bf16, got 'fp16'/.test((e as Error).message));
  } finally {
    if (saved === undefined) delete process.env['SEEDVL_MATMUL_PRECISION'];
    else process.env['SEEDVL_MATMUL_PRECISION'] = saved;
    for (const d of [bf16Top, bf16Text, f32]) rmSync(d, { recursive: true, force: true });
  }
});
