import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tidy, noGrad, cat } from '../../../src/tensor/index.ts';
import { preset } from '../../../src/models/seed_vl/presets.ts';
import { makeConfig } from '../../../src/models/seed_vl/config.ts';
import { accountModel, languageParams } from '../../../src/models/seed_vl/accounting.ts';
import { SeedVLModel } from '../../../src/models/seed_vl/model.ts';
import { nextTokenLabels, rowsToCuSeqlens, positionsFor } from '../../../src/models/seed_vl/inputs.ts';
import {
  tinyConfig, tinySigmoidConfig, buildModel, randomImages, sequenceWithImages, rows, assertClose,
} from './_helpers.ts';

test('parameter counts of instantiated models equal the config accounting', () => {
  const variants = {
    tiny: tinyConfig(),
    sigmoid: tinySigmoidConfig(),
    tied: tinyConfig((c) => (c.language.tieWordEmbeddings = true)),
    dense: tinyConfig((c) => (c.language.moe = null)),
    freq2: tinyConfig((c) => Object.assign(c.language.moe!, { layerFreq: 2, firstKDenseReplace: 0, numSharedExperts: 0 })),
    small: preset('small'),
  };
  for (const [name, cfg] of Object.entries(variants)) {
    const m = new SeedVLModel(cfg);
    const a = accountModel(cfg);
    assert.equal(m.vision.numParameters(), a.vision_params, `${name} vision`);
    assert.equal(m.adapter.numParameters(), a.adapter_params, `${name} adapter`);
    assert.equal(m.language.numParameters(), a.language_params_total, `${name} language`);
    assert.equal(m.numParameters(), a.total_params, `${name} total`);
    m.dispose();
  }
  // Active < total exactly by the unchosen experts of each MoE layer.
  const c = tinyConfig();
  const l = languageParams(c.language);
  const moe = c.language.moe!;
  const moeLayers = c.language.numLayers - moe.firstKDenseReplace;
  assert.equal(l.total - l.active, moeLayers * (moe.numExperts - moe.numExpertsPerTok) * 3 * c.language.hiddenSize * moe.intermediateSize);
});

test('shapes through vision, adapter and language model', () => {
  const cfg = tinyConfig();
  const m = buildModel(cfg);
  const grids = [{ h: 4, w: 6 }, { h: 2, w: 2 }];
  tidy(() => {
    const img = randomImages(cfg, grids, 3);
    const feats = m.vision.forward(img.pixelValues, grids);
    assert.deepEqual(feats.shape, [28, cfg.vision.hiddenSize]);
    const toks = m.encodeImages(img);
    assert.deepEqual(toks.shape, [7, cfg.language.hiddenSize]);
    const ids = sequenceWithImages(cfg, grids, 3, 1);
    const out = m.forward({ inputIds: ids, images: img });
    assert.deepEqual(out.logits.shape, [ids.length, cfg.language.vocabSize]);
    assert.equal(out.expertCounts.length, cfg.language.numLayers - cfg.language.moe!.firstKDenseReplace);
    for (const c of out.expertCounts) assert.equal(c.reduce((a, b) => a + b, 0), ids.length * cfg.language.moe!.numExpertsPerTok);
  });
  m.dispose();
});

test('packing invariance: two images packed give the features of each alone', () => {
  const cfg = tinyConfig();
  const m = buildModel(cfg);
  const ga = { h: 4, w: 6 };
  const gb = { h: 6, w: 2 };
  noGrad(() => tidy(() => {
    const a = randomImages(cfg, [ga], 1);
    const b = randomImages(cfg, [gb], 2);
    const packed = m.encodeImages({ pixelValues: cat([a.pixelValues, b.pixelValues], 0), grids: [ga, gb] });
    const alone = cat([m.encodeImages(a), m.encodeImages(b)], 0);
    assertClose(packed.toArray(), alone.toArray(), 2e-5, 'packed vs alone image tokens');
  }));
  m.dispose();
});

test('packing invariance: two samples in one row give the same logits and loss as separately', () => {
  const cfg = tinyConfig();
  const m = buildModel(cfg);
  const g = { h: 4, w: 4 };
  noGrad(() => tidy(() => {
    const img = randomImages(cfg, [g], 4);
    const idsA = sequenceWithImages(cfg, [g], 4, 11);
    const idsB = sequenceWithImages(cfg, [], 9, 12);
    const cuA = [0, idsA.length];
    const cuB = [0, idsB.length];
    const ids = Int32Array.from([...idsA, ...idsB]);
    const cu = rowsToCuSeqlens([[idsA.length, idsB.length]], ids.length);
    const labels = nextTokenLabels(ids, cu);
    const packed = m.forward({ inputIds: ids, cuSeqlens: cu, labels, images: img });
    const sepA = m.forward({ inputIds: idsA, cuSeqlens: cuA, labels: nextTokenLabels(Int32Array.from(idsA), cuA), images: img });
    const sepB = m.forward({ inputIds: idsB, cuSeqlens: cuB, labels: nextTokenLabels(Int32Array.from(idsB), cuB) });
    const sep = cat([sepA.logits, sepB.logits], 0);
    assertClose(packed.logits.toArray(), sep.toArray(), 1e-4, 'packed vs separate logits');
    assert.equal(packed.numTargets, sepA.numTargets! + sepB.numTargets!);
    const sumPacked = packed.lmLoss!.item() * packed.numTargets!;
    const sumSep = sepA.lmLoss!.item() * sepA.numTargets! + sepB.lmLoss!.item() * sepB.numTargets!;
    assert.ok(Math.abs(sumPacked - sumSep) < 1e-4 * Math.abs(sumSep), `summed loss ${sumPacked} vs ${sumSep}`);
    // Padding rows: a [2, S] batch with a padded tail per row changes nothing for the real samples.
    const S = idsA.length + 3;
    const padded = Int32Array.from([...idsA, 0, 0, 0, ...idsB, ...new Array(S - idsB.length).fill(0)]);
    const cu2 = rowsToCuSeqlens([[idsA.length], [idsB.length]], S);
    const out2 = m.forward({ inputIds: padded, cuSeqlens: cu2, images: img });
    assertClose(rows(out2.logits, S, idsB.length), sepB.logits.toArray(), 1e-4, 'row 2 after padding');
  }));
  m.dispose();
});

for (const [name, cfgOf] of [['softmax router', tinyConfig], ['sigmoid router', tinySigmoidConfig]] as const) {
  test(`incremental decode logits equal full-forward logits (${name}, two cache rows)`, () => {
    const cfg = cfgOf();
    const m = buildModel(cfg, 5);
    const g = { h: 2, w: 4 };
    noGrad(() => tidy(() => {
      const img = randomImages(cfg, [g], 9);
      const seqA = sequenceWithImages(cfg, [g], 3, 21); // 3 text + SOI + 2 image + EOI + 3 text = 10
      const seqB = sequenceWithImages(cfg, [], 8, 22);
      const fullA = m.forward({ inputIds: seqA, images: img }).logits;
      const fullB = m.forward({ inputIds: seqB }).logits;
      const pA = 7;
      const pB = 3;
      const cache = m.createCache(2, 16);
      const first = m.prefill(cache, { inputIds: [...seqA.slice(0, pA), ...seqB.slice(0, pB)], rowLengths: [pA, pB], images: img });
      assertClose(rows(first, 0, 1), rows(fullA, pA - 1, 1), 1e-4, 'prefill row A');
      assertClose(rows(first, 1, 1), rows(fullB, pB - 1, 1), 1e-4, 'prefill row B');
      for (let s = 0; s < 3; s++) {
        const step = m.decode(cache, [seqA[pA + s], seqB[pB + s]]);
        assertClose(rows(step, 0, 1), rows(fullA, pA + s, 1), 1e-4, `decode step ${s} row A`);
        assertClose(rows(step, 1, 1), rows(fullB, pB + s, 1), 1e-4, `decode step ${s} row B`);
      }
      // A multi-token chunk on one row only (chunked prefill), the other row idle.
      const chunk = m.prefill(cache, { inputIds: seqB.slice(pB + 3, pB + 5), rowLengths: [0, 2] }, { allLogits: true });
      assertClose(chunk.toArray(), rows(fullB, pB + 3, 2), 1e-4, 'chunk on row B');
      assert.deepEqual(Array.from(cache.lengths), [pA + 3, pB + 5]);
      cache.dispose();
    }));
    m.dispose();
  });
}

test('bad input fails with a clear message before any compute', () => {
  const cfg = tinyConfig();
  const m = buildModel(cfg);
  let computed = 0;
  for (const mod of [m.vision, m.language.embedTokens] as { forward: (...a: never[]) => unknown }[]) {
    const f = mod.forward.bind(mod);
    mod.forward = (...a: never[]) => {
      computed++;
      return f(...a);
    };
  }
  tidy(() => {
    // Image not a multiple of 28 px: 3×4 patches = 42×56 px.
    const odd = randomImages(cfg, [{ h: 3, w: 4 }], 1);
    const idsOdd = [5, cfg.soiTokenId, ...new Array(3).fill(cfg.imageTokenId), cfg.eoiTokenId];
    assert.throws(() => m.forward({ inputIds: idsOdd, images: odd }), /image 0 is 56×42 px.*multiples of 28/);
    // Placeholder count does not match the image.
    const g = { h: 4, w: 4 };
    const img = randomImages(cfg, [g], 2);
    const short = [5, cfg.soiTokenId, ...new Array(3).fill(cfg.imageTokenId), cfg.eoiTokenId];
    assert.throws(() => m.forward({ inputIds: short, images: img }), /image 0: 3 placeholder tokens.*gives 4 LLM tokens/);
    // Two images given, one placeholder run.
    const two = randomImages(cfg, [g, g], 3);
    assert.throws(() => m.forward({ inputIds: sequenceWithImages(cfg, [g], 2, 1), images: two }), /1 image placeholder run.*2 image/);
    // Placeholders without images.
    assert.throws(() => m.forward({ inputIds: sequenceWithImages(cfg, [g], 2, 1) }), /1 image placeholder run.*0 image/);
    // Missing [EOI].
    const noEoi = [5, cfg.soiTokenId, ...new Array(4).fill(cfg.imageTokenId), 7];
    assert.throws(() => m.forward({ inputIds: noEoi, images: img }), /\[SOI\].*\[EOI\]/);
    // Pixel rows do not match the grids.
    assert.throws(() => m.forward({ inputIds: sequenceWithImages(cfg, [{ h: 2, w: 2 }], 2, 1), images: { pixelValues: img.pixelValues, grids: [{ h: 2, w: 2 }] } }), /16 rows/);
    // Labels of the wrong length; sample boundaries that do not cover the tokens.
    assert.throws(() => m.forward({ inputIds: [5, 6, 7], labels: [1, 2] }), /labels has 2 entries for 3 tokens/);
    assert.throws(() => m.forward({ inputIds: [5, 6, 7], cuSeqlens: [0, 2] }), /cuSeqlens/);
  });
  assert.equal(computed, 0, 'no embedding or vision compute ran for bad inputs');
  assert.throws(() => makeConfig({ ...cfg, language: { ...cfg.language, numHeads: 3, numKvHeads: 3, headDim: undefined as never } }), /text_config.num_attention_heads.*divide/);
  m.dispose();
});

test('video frames: each frame is an image block after its timestamp text; frame tokens match frames encoded alone', () => {
  const cfg = tinyConfig();
  const m = buildModel(cfg);
  const g = { h: 2, w: 4 };
  noGrad(() => tidy(() => {
    const frames = [randomImages(cfg, [g], 1), randomImages(cfg, [g], 2), randomImages(cfg, [g], 3)];
    const video = { pixelValues: cat(frames.map((f) => f.pixelValues), 0), grids: [g, g, g] };
    const ids: number[] = [20, 21];
    frames.forEach((_, i) => ids.push(30 + i, cfg.soiTokenId, cfg.imageTokenId, cfg.imageTokenId, cfg.eoiTokenId)); // "[i second]" [SOI] 2 tokens [EOI]
    ids.push(22);
    const h = m.embed(Int32Array.from(ids), [0, ids.length], video);
    const alone = frames.map((f) => m.encodeImages(f).toArray());
    frames.forEach((_, i) => assertClose(rows(h, 2 + 5 * i + 2, 2), alone[i], 2e-5, `frame ${i}`));
    assert.deepEqual(m.forward({ inputIds: ids, images: video }).logits.shape, [ids.length, cfg.language.vocabSize]);
  }));
  m.dispose();
});

test('input helpers: row packing boundaries, positions, next-token labels with a loss mask', () => {
  assert.deepEqual(rowsToCuSeqlens([[3, 2], [4]], 6), [0, 3, 5, 6, 10, 12]);
  assert.throws(() => rowsToCuSeqlens([[5, 2]], 6), /row 0/);
  assert.deepEqual(Array.from(positionsFor([0, 3, 5])), [0, 1, 2, 0, 1]);
  const ids = Int32Array.from([10, 11, 12, 13, 14]);
  assert.deepEqual(Array.from(nextTokenLabels(ids, [0, 3, 5])), [11, 12, -100, 14, -100]);
  assert.deepEqual(Array.from(nextTokenLabels(ids, [0, 5], [0, 0, 1, 1, 0])), [-100, 12, 13, -100, -100]);
});
