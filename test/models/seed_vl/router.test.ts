import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Tensor, tensor, manualSeed, noGrad, tidy, copyInto, randn, ones, backward, native, narrow } from '../../../src/tensor/index.ts';
import { quantizeWeight, dequantizeWeight } from '../../../src/tensor/ops/quant.ts';
import { abs } from '../../../src/tensor/ops/elementwise.ts';
import { Router, MoE, loadBalancingLoss, routerZLoss, type RouterOptions } from '../../../src/nn/moe.ts';
import { assertClose } from './_helpers.ts';

function setWeight(t: Tensor, values: number[]): void {
  noGrad(() => tidy(() => copyInto(tensor(values, [...t.shape], t.dtype as 'float32'), t)));
}

/** Router whose logits equal x (identity weight, hidden = E). */
function identityRouter(opts: Omit<RouterOptions, 'dtype'>): Router {
  const E = opts.numExperts;
  const r = new Router(E, { ...opts, dtype: 'float64' });
  const eye = new Array(E * E).fill(0);
  for (let i = 0; i < E; i++) eye[i * E + i] = 1;
  setWeight(r.weight, eye);
  return r;
}

const sigm = (v: number): number => 1 / (1 + Math.exp(-v));

test('softmax router: selected weights sum to one and are the renormalised top-k probabilities', () => {
  manualSeed(7);
  const r = new Router(16, { numExperts: 6, topK: 3, scoring: 'softmax', normTopkProb: true, dtype: 'float64' });
  tidy(() => {
    const x = randn([10, 16], { dtype: 'float64', seed: 3 });
    const out = r.forward(x);
    const w = out.weights.toArray();
    const e = out.experts.toArray();
    const logits = out.logits.toArray();
    for (let t = 0; t < 10; t++) {
      const row = w.slice(t * 3, t * 3 + 3);
      assert.ok(Math.abs(row.reduce((a, b) => a + b, 0) - 1) < 1e-12, `token ${t} weights sum ${row}`);
      // Reference: softmax → top-3 → renormalise.
      const l = logits.slice(t * 6, t * 6 + 6);
      const mx = Math.max(...l);
      const p = l.map((v) => Math.exp(v - mx));
      const order = p.map((v, i) => [v, i]).sort((a, b) => b[0] - a[0]).slice(0, 3);
      const s = order.reduce((a, [v]) => a + v, 0);
      assert.deepEqual(e.slice(t * 3, t * 3 + 3), order.map(([, i]) => i));
      assertClose(row, order.map(([v]) => v / s), 1e-12, `token ${t} weights`);
    }
  });
  r.dispose();
});

test('sigmoid router: group-limited selection on biased scores, weights from unbiased scores × scale', () => {
  const r = identityRouter({ numExperts: 8, topK: 2, scoring: 'sigmoid', normTopkProb: true, nGroup: 4, topkGroup: 2, routedScalingFactor: 2.5 });
  // Groups (2 experts each): g0 has the single best expert but a weak partner.
  const logits = [5, -5, 2, 2, 1.5, 1.5, -1, -1];
  tidy(() => {
    let out = r.forward(tensor(logits, [1, 8], 'float64'));
    // Group scores: g0 ≈ 0.9933+0.0067 = 1.0, g1 ≈ 1.76, g2 ≈ 1.64, g3 ≈ 0.54 → keep g1, g2 → experts 2, 3.
    assert.deepEqual(out.experts.toArray().sort(), [2, 3]);
    const w = out.weights.toArray();
    assertClose(w, [1.25, 1.25], 1e-12, 'equal scores share the scaled weight');
    // A correction bias moves selection (expert 4 wins) but not the weights' source (unbiased scores).
    setWeight(r.eScoreCorrectionBias!, [0, 0, 0, 0, 10, 0, 0, 0]);
    out = r.forward(tensor(logits, [1, 8], 'float64'));
    const e = out.experts.toArray();
    assert.equal(e[0], 4);
    const s = [sigm(1.5), sigm(logits[e[1]])];
    assertClose(out.weights.toArray(), s.map((v) => (2.5 * v) / (s[0] + s[1])), 1e-12, 'weights from unbiased scores');
    assert.ok(Math.abs(out.weights.toArray().reduce((a, b) => a + b, 0) - 2.5) < 1e-12);
  });
  r.dispose();
});

test('load-balancing loss matches E·Σ f·P on balanced and unbalanced routing; z-loss formula', () => {
  const E = 4;
  const r = identityRouter({ numExperts: E, topK: 1, scoring: 'softmax', normTopkProb: false });
  const s = 3;
  tidy(() => {
    // Balanced: token t → expert t, probabilities symmetric → loss exactly 1.
    const eye: number[] = [];
    for (let t = 0; t < E; t++) for (let e = 0; e < E; e++) eye.push(t === e ? s : 0);
    let out = r.forward(tensor(eye, [E, E], 'float64'));
    const counts = [1, 1, 1, 1];
    assert.ok(Math.abs(loadBalancingLoss(out.probs, counts, 1).item() - 1) < 1e-12);
    // Unbalanced: every token → expert 0: f = [1, 0, 0, 0], P_0 = e^s / (e^s + 3).
    const all0: number[] = [];
    for (let t = 0; t < E; t++) all0.push(s, 0, 0, 0);
    out = r.forward(tensor(all0, [E, E], 'float64'));
    assert.deepEqual(out.experts.toArray(), [0, 0, 0, 0]);
    const p0 = Math.exp(s) / (Math.exp(s) + 3);
    assert.ok(Math.abs(loadBalancingLoss(out.probs, [4, 0, 0, 0], 1).item() - E * p0) < 1e-12);
    // z-loss: mean over tokens of logsumexp² (all rows equal here).
    const lse = Math.log(Math.exp(s) + 3);
    assert.ok(Math.abs(routerZLoss(out.logits).item() - lse * lse) < 1e-12);
  });
  // Top-2 balanced: each expert gets T·k/E slots → still exactly 1.
  const r2 = identityRouter({ numExperts: E, topK: 2, scoring: 'softmax', normTopkProb: true });
  tidy(() => {
    const x = tensor([2, 1, 0, 0, 0, 2, 1, 0, 0, 0, 2, 1, 1, 0, 0, 2], [4, 4], 'float64');
    const out = r2.forward(x); // cyclic rows: token t picks experts t and t+1, mean probabilities all 1/4
    const counts = [0, 0, 0, 0];
    for (const e of out.experts.toArray()) counts[e]++;
    assert.deepEqual(counts, [2, 2, 2, 2]);
    assert.ok(Math.abs(loadBalancingLoss(out.probs, [2, 2, 2, 2], 2).item() - 1) < 1e-12);
  });
  r.dispose();
  r2.dispose();
});

test('MoE dispatch equals the per-token sum of chosen experts (+ shared) and skips unchosen experts', () => {
  manualSeed(11);
  const d = 8;
  const m = new MoE({ hidden: d, intermediate: 6, numExperts: 4, topK: 2, scoring: 'softmax', normTopkProb: true, numShared: 1, dtype: 'float64' });
  // Expert 3 can never win: x ≥ 0 and its router row is strongly negative.
  const w = m.gate.weight.toArray();
  for (let i = 0; i < d; i++) w[3 * d + i] = -10;
  setWeight(m.gate.weight, w);
  // Poison expert 3: if any of its weights took part in the computation (a
  // dense dispatch), the output would contain NaN.
  const ex3 = m.experts[3];
  const saved = [ex3.gateProj.weight, ex3.upProj.weight, ex3.downProj.weight].map((p) => p.toArray());
  for (const p of [ex3.gateProj.weight, ex3.upProj.weight, ex3.downProj.weight]) setWeight(p, p.toArray().map(() => NaN));
  tidy(() => {
    const T = 9;
    const x = abs(randn([T, d], { dtype: 'float64', seed: 5 }));
    const out = m.forward(x);
    assert.deepEqual(out.out.shape, [T, d]);
    assert.equal(out.counts[3], 0, 'no token chose expert 3');
    assert.ok(out.out.toArray().every(Number.isFinite), 'an expert no token chose must not run');
    assert.equal(out.counts.reduce((a, b) => a + b, 0), T * 2, 'each token is dispatched to exactly k experts');
    // Unchosen experts get no gradient; chosen ones do.
    const seed = ones([T, d], 'float64');
    backward(out.out, { grad: seed });
    assert.equal(ex3.gateProj.weight.grad, null);
    assert.ok(m.experts[0].gateProj.weight.grad || m.experts[1].gateProj.weight.grad);
    m.zeroGrad();
    [ex3.gateProj.weight, ex3.upProj.weight, ex3.downProj.weight].forEach((p, i) => setWeight(p, saved[i]));
    const wts = out.routing.weights.toArray();
    const ex = out.routing.experts.toArray();
    const xs = x.toArray();
    const got = out.out.toArray();
    for (let t = 0; t < T; t++) {
      const xt = tensor(xs.slice(t * d, (t + 1) * d), [1, d], 'float64');
      const ref = m.sharedExperts!.forward(xt).toArray();
      for (let j = 0; j < 2; j++) {
        const y = m.experts[ex[t * 2 + j]].forward(xt).toArray();
        for (let i = 0; i < d; i++) ref[i] += wts[t * 2 + j] * y[i];
      }
      assertClose(got.slice(t * d, (t + 1) * d), ref, 1e-12, `token ${t}`);
    }
  });
  m.dispose();
});

test('updateCorrectionBias lowers over-loaded and raises under-loaded experts', () => {
  const r = identityRouter({ numExperts: 4, topK: 1, scoring: 'sigmoid', normTopkProb: true });
  r.updateCorrectionBias([6, 2, 0, 0], 0.1);
  assertClose(r.eScoreCorrectionBias!.toArray(), [-0.1, 0, 0.1, 0.1], 1e-12, 'bias');
  assert.equal(r.eScoreCorrectionBias!.requiresGrad, false);
  r.dispose();
});

test('MoE with int8 experts (quantised checkpoints) equals the float MoE over the dequantised weights', () => {
  const int8Acts = native.quantInt8Activations as (on?: boolean) => boolean;
  const before = int8Acts();
  int8Acts(false); // exact f32 activations: the quantised matmuls then equal the dequantised product up to summation order
  const opts = { hidden: 64, intermediate: 96, numExperts: 6, topK: 2, scoring: 'softmax', normTopkProb: true, dtype: 'float32' } as const;
  manualSeed(3);
  const q = new MoE(opts);
  const f = new MoE(opts);
  try {
    tidy(() => {
      copyInto(q.gate.weight, f.gate.weight);
      q.experts.forEach((ex, e) => {
        for (const k of ['gateProj', 'upProj', 'downProj'] as const) {
          const qw = quantizeWeight(ex[k].weight, 8, 32);
          copyInto(dequantizeWeight(qw), f.experts[e]![k].weight);
          ex[k].setQuantized(qw); // frees the float weight: the forward must take the quantised path
        }
      });
      const x = randn([40, 64], { seed: 9 });   // 80 slots over 6 experts: blocks of several rows
      const a = q.forward(x), b = f.forward(x);
      assert.deepEqual(a.counts, b.counts);
      assertClose(a.out.toArray(), b.out.toArray(), 1e-4, 'quantised vs dequantised experts');
      // One token: the few-row (GEMV) path of each chosen expert.
      assertClose(q.forward(narrow(x, 0, 0, 1)).out.toArray(), f.forward(narrow(x, 0, 0, 1)).out.toArray(), 1e-4, 'one token');
    });
  } finally {
    int8Acts(before);
    q.dispose();
    f.dispose();
  }
});
