/**
 * nn factories around existing tensors (fromTensors / fromQuantized /
 * fromLinears / fromModules): the given tensors are used as they are (same
 * object, same storage — no float32 copy of bf16 weights), forwards match the
 * plain ops, and misfits are refused naming the module and the shapes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as T from '../../src/tensor/index.ts';
import * as nn from '../../src/nn/index.ts';
import { SwiGLU, Router, MoE } from '../../src/nn/moe.ts';
import { VisionAttention } from '../../src/models/seed_vl/vision.ts';
import { transpose } from '../../src/tensor/ops/view.ts';
import { quantizeWeight, quantLinear } from '../../src/tensor/ops/quant.ts';
import { randomTensor } from '../helpers/gradcheck.ts';

const bf16 = (t: T.Tensor): T.Tensor => {
  const out = T.empty(t.shape, 'bfloat16');
  T.castInto(t, out);
  return out;
};
const values = (t: T.Tensor): number[] => Array.from(T.contiguousCopy(t).data<Float32Array>());

test('Linear.fromTensors keeps a bf16 weight as given (same tensor and storage), frozen, and runs like linear()', () => {
  const w = bf16(randomTensor([6, 8], 1, 'float32'));
  const b = randomTensor([6], 2, 'float32');
  const lin = nn.Linear.fromTensors(w, b);
  assert.equal(lin.weight, w);
  assert.equal(lin.weight.storage, w.storage);
  assert.equal(lin.weight.dtype, 'bfloat16');
  assert.equal(lin.bias, b);
  assert.deepEqual([lin.inFeatures, lin.outFeatures], [8, 6]);
  assert.equal(w.requiresGrad, false);
  assert.deepEqual([...lin.namedParameters()].map(([n]) => n), ['weight', 'bias']);
  const x = randomTensor([3, 8], 3, 'float32');
  assert.deepEqual(values(lin.forward(x)), values(T.linear(x, w, b)));
  assert.equal(nn.Linear.fromTensors(w).bias, null);
  assert.equal(nn.Linear.fromTensors(randomTensor([2, 3], 4, 'float32'), null, { trainable: true }).weight.requiresGrad, true);
});

test('Linear.fromTensors takes a strided (transposed) view without copying it', () => {
  const base = bf16(randomTensor([8, 6], 5, 'float32'));
  const v = transpose(base, 0, 1); // [6, 8], strides [1, 6]
  const lin = nn.Linear.fromTensors(v);
  assert.equal(lin.weight, v);
  assert.equal(lin.weight.storage, base.storage);
  assert.ok(!lin.weight.isContiguous);
  const x = randomTensor([2, 8], 6, 'float32');
  // Transposed and contiguous weights take different kernels (summation order): equal to rounding.
  const got = values(lin.forward(x)), want = values(T.linear(x, T.contiguousCopy(v)));
  got.forEach((g, i) => assert.ok(Math.abs(g - want[i]!) <= 1e-5 * (1 + Math.abs(want[i]!)), `${i}: ${g} vs ${want[i]}`));
});

test('Linear factories refuse misfits, naming the shapes', () => {
  const w = randomTensor([4, 5], 7, 'float32');
  assert.throws(() => nn.Linear.fromTensors(randomTensor([4], 1, 'float32')), /Linear\.fromTensors: weight must be \[out, in\], got \[4\]/);
  assert.throws(() => nn.Linear.fromTensors(w, randomTensor([5], 1, 'float32')), /Linear\(5 → 4\): bias has shape \[5\], expected \[4\]/);
  assert.throws(() => new nn.Linear(5, 3, { tensors: { weight: w } }), /Linear\(5 → 3\): weight has shape \[4,5\], expected \[3,5\]/);
  const qw = quantizeWeight(randomTensor([4, 64], 8, 'float32'), 8, 32);
  assert.throws(() => new nn.Linear(32, 4, { quantized: { weight: qw } }), /quantized weight \(int8\) has shape \[4,64\], expected \[4,32\]/);
  assert.throws(() => new nn.Linear(64, 4, { quantized: { weight: qw }, tensors: { weight: w } }), /either tensors or a quantized weight/);
});

test('Linear.fromQuantized runs the packed weight in place (same q/scales tensors) like quantLinear', () => {
  for (const bits of [8, 4] as const) {
    const qw = quantizeWeight(bf16(randomTensor([5, 64], 9, 'float32')), bits, 32);
    const b = randomTensor([5], 10, 'float32');
    const lin = nn.Linear.fromQuantized(qw, b);
    assert.equal(lin.quantized, qw);
    assert.equal(lin.quantized!.q.storage, qw.q.storage);
    assert.deepEqual(lin.weight.shape, [5, 64]);
    assert.ok(lin.weight.isDisposed, 'the float weight is a freed stand-in, as after setQuantized');
    const x = randomTensor([3, 64], 11, 'float32');
    assert.deepEqual(values(lin.forward(x)), values(quantLinear(x, qw, b)));
    assert.equal(nn.Linear.fromQuantized(qw).bias, null);
    lin.dispose();
    assert.ok(qw.q.isDisposed && qw.scales.isDisposed, 'dispose frees the packed weight');
  }
});

test('Embedding, LayerNorm, RMSNorm fromTensors: tensors as given, forward as the ops, misfits refused', () => {
  const table = bf16(randomTensor([10, 4], 12, 'float32'));
  const emb = nn.Embedding.fromTensors(table);
  assert.equal(emb.weight, table);
  assert.deepEqual([emb.numEmbeddings, emb.embeddingDim], [10, 4]);
  const ids = T.tensor([3, 0, 9], [3], 'int32');
  assert.deepEqual(values(emb.forward(ids)), values(T.embedding(table, ids)));
  assert.throws(() => new nn.Embedding(10, 5, { weight: table }), /Embedding\(10×5\): weight has shape \[10,4\], expected \[10, 5\]/);

  const g = randomTensor([4], 13, 'float32'), b = randomTensor([4], 14, 'float32');
  const x = randomTensor([2, 4], 15, 'float32');
  const ln = nn.LayerNorm.fromTensors(g, b, 1e-5);
  assert.equal(ln.weight, g);
  assert.equal(ln.bias, b);
  assert.equal(ln.eps, 1e-5);
  assert.deepEqual(values(ln.forward(x)), values(T.layerNorm(x, g, b, 1e-5)));
  assert.equal(nn.LayerNorm.fromTensors(g, null).bias, null);
  assert.throws(() => nn.LayerNorm.fromTensors(g, randomTensor([3], 1, 'float32')), /LayerNorm\(4\): bias has shape \[3\], expected \[4\]/);

  const rms = nn.RMSNorm.fromTensors(g, 1e-6);
  assert.equal(rms.weight, g);
  assert.equal(g.requiresGrad, false);
  assert.deepEqual(values(rms.forward(x)), values(T.rmsNorm(x, g, 1e-6)));
  assert.throws(() => new nn.RMSNorm(5, 1e-6, { tensors: { weight: g } }), /RMSNorm\(5\): weight has shape \[4\], expected \[5\]/);
});

test('SwiGLU.fromLinears, Router.fromTensors, MoE.fromModules rebuild a random MoE exactly; misfits refused', () => {
  T.manualSeed(3);
  const ref = new MoE({ hidden: 8, intermediate: 6, numExperts: 4, topK: 2, scoring: 'softmax', normTopkProb: true, numShared: 1 });
  const lin = (l: nn.Linear): nn.Linear => nn.Linear.fromTensors(l.weight);
  const glu = (s: SwiGLU): SwiGLU => SwiGLU.fromLinears(lin(s.gateProj), lin(s.upProj), lin(s.downProj));
  const router = Router.fromTensors(ref.gate.weight, { topK: 2, scoring: 'softmax', normTopkProb: true });
  assert.equal(router.weight, ref.gate.weight);
  assert.equal(router.numExperts, 4);
  const moe = MoE.fromModules(router, ref.experts.map(glu), glu(ref.sharedExperts!));
  assert.equal(moe.opts.numShared, 1);
  assert.equal(moe.opts.intermediate, 6);
  assert.deepEqual([...moe.namedParameters()].map(([n]) => n), [...ref.namedParameters()].map(([n]) => n));
  const x = randomTensor([5, 8], 16, 'float32');
  T.noGrad(() => assert.deepEqual(values(moe.forward(x).out), values(ref.forward(x).out)));

  const e0 = ref.experts[0]!;
  assert.throws(() => SwiGLU.fromLinears(e0.gateProj, e0.upProj, e0.gateProj), /SwiGLU\(8, 6\): projections .* down 8 → 6/);
  assert.throws(() => Router.fromTensors(ref.gate.weight, { topK: 5, scoring: 'softmax', normTopkProb: true }), /Router: topK 5 > numExperts 4/);
  assert.throws(() => new Router(8, { numExperts: 3, topK: 1, scoring: 'softmax', normTopkProb: false }, { weight: ref.gate.weight }), /Router: weight has shape \[4,8\], expected \[3, 8\]/);
  assert.throws(() => Router.fromTensors(ref.gate.weight, { topK: 1, scoring: 'sigmoid', normTopkProb: false }), /sigmoid router needs e_score_correction_bias/);
  assert.throws(() => MoE.fromModules(router, ref.experts.slice(0, 3)), /3 experts given/);
  assert.throws(() => MoE.fromModules(router, ref.experts, new SwiGLU(8, 4)), /shared experts width 4 is not a multiple of the expert width 6/);
});

test('VisionAttention.fromLinears registers the given projections; misfits refused', () => {
  const qkv = nn.Linear.fromTensors(randomTensor([24, 8], 17, 'float32'), randomTensor([24], 18, 'float32'));
  const proj = nn.Linear.fromTensors(randomTensor([8, 8], 19, 'float32'));
  const a = VisionAttention.fromLinears(qkv, proj, 2, 4);
  assert.equal(a.qkv, qkv);
  assert.equal(a.proj, proj);
  assert.deepEqual([a.numHeads, a.headDim], [2, 4]);
  assert.deepEqual([...a.namedParameters()].map(([n]) => n), ['qkv.weight', 'qkv.bias', 'proj.weight']);
  assert.throws(() => VisionAttention.fromLinears(qkv, proj, 3, 4), /VisionAttention: qkv 8 → 24 and proj 8 → 8 do not fit 3 heads × 4/);
});
