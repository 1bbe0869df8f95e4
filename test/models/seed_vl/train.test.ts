import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tidy, noGrad } from '../../../src/tensor/index.ts';
import { nextTokenLabels, type ModelInputs } from '../../../src/models/seed_vl/inputs.ts';
import { saveModel, loadModel } from '../../../src/models/seed_vl/checkpoint.ts';
import { parseConfig, type SeedVLConfig } from '../../../src/models/seed_vl/config.ts';
import type { SeedVLModel } from '../../../src/models/seed_vl/model.ts';
import { tinyConfig, buildModel, randomImages, sequenceWithImages, TinyTrainer, maxAbsDiff } from './_helpers.ts';

/** Two packed samples, one with an image, next-token labels inside each. */
function batch(cfg: SeedVLConfig): ModelInputs {
  const g = { h: 4, w: 4 };
  const idsA = sequenceWithImages(cfg, [g], 5, 41);
  const idsB = sequenceWithImages(cfg, [], 14, 42);
  const ids = Int32Array.from([...idsA, ...idsB]);
  const cuSeqlens = [0, idsA.length, ids.length];
  return { inputIds: ids, cuSeqlens, labels: nextTokenLabels(ids, cuSeqlens), images: randomImages(cfg, [g], 43) };
}

function logitsOf(m: SeedVLModel, b: ModelInputs): number[] {
  return noGrad(() => tidy(() => m.forward(b).logits.toArray()));
}

test('a tiny model overfits one packed batch (loss < 0.05)', () => {
  const cfg = tinyConfig();
  const m = buildModel(cfg, 2);
  const b = batch(cfg);
  const trainer = new TinyTrainer(m, 3e-3);
  const first = trainer.train(b);
  let loss = first; // total loss: next-token cross-entropy + router aux and z terms
  while (loss >= 0.05 && trainer.step < 200) loss = trainer.train(b);
  assert.ok(first > 5, `initial loss ${first} should be near ln(vocab)`);
  assert.ok(loss < 0.05, `loss ${loss} after ${trainer.step} steps`);
  m.dispose();
});

test('checkpoint: save then load gives identical logits, and training continues identically', () => {
  const cfg = tinyConfig((c) => (c.language.tieWordEmbeddings = true));
  const dir = mkdtempSync(join(tmpdir(), 'seedvl-ckpt-'));
  const path = join(dir, 'model');
  try {
    const a = buildModel(cfg, 9);
    const b = batch(cfg);
    const ta = new TinyTrainer(a, 1e-3);
    ta.train(b); // a trained state, not just the init
    saveModel(a, path);
    assert.ok(existsSync(join(path, 'config.json')) && existsSync(join(path, 'model.safetensors')));
    assert.deepEqual(parseConfig(JSON.parse(readFileSync(join(path, 'config.json'), 'utf8'))), a.config);
    const loaded = loadModel(path);
    assert.equal(maxAbsDiff(logitsOf(a, b), logitsOf(loaded, b)), 0, 'logits after load');
    // Same fresh optimiser on both: one more step keeps them identical.
    const t1 = new TinyTrainer(a, 1e-3);
    const t2 = new TinyTrainer(loaded, 1e-3);
    const l1 = t1.train(b);
    const l2 = t2.train(b);
    assert.equal(l1, l2);
    assert.equal(maxAbsDiff(logitsOf(a, b), logitsOf(loaded, b)), 0, 'logits after a step on both');
    assert.throws(() => saveModel(a, path), /exist/i);
    saveModel(a, path, { overwrite: true });
    a.dispose();
    loaded.dispose();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
