import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as T from '../../src/tensor/index.ts';
import * as nn from '../../src/nn/index.ts';
import { gradcheck, randomTensor } from '../helpers/gradcheck.ts';

class TwoLayer extends nn.Module {
  readonly fc1: nn.Linear;
  readonly norm: nn.LayerNorm;
  readonly blocks: nn.Linear[];
  constructor() {
    super();
    this.fc1 = this.module('fc1', new nn.Linear(4, 6));
    this.norm = this.module('norm', new nn.LayerNorm(6));
    this.blocks = this.modules('blocks', [new nn.Linear(6, 3, { bias: false }), new nn.Linear(3, 2)]);
  }
  forward(x: T.Tensor): T.Tensor {
    let h = T.gelu(this.norm.forward(this.fc1.forward(x)));
    for (const b of this.blocks) h = b.forward(h);
    return h;
  }
}

test('Module: dotted parameter names, counts, state dict round trip', () => {
  T.manualSeed(1);
  const m = new TwoLayer();
  const names = [...m.namedParameters()].map(([n]) => n);
  assert.deepEqual(names, ['fc1.weight', 'fc1.bias', 'norm.weight', 'norm.bias', 'blocks.0.weight', 'blocks.1.weight', 'blocks.1.bias']);
  assert.equal(m.numParameters(), 4 * 6 + 6 + 6 + 6 + 6 * 3 + 3 * 2 + 2);
  const x = T.randn([5, 4], { seed: 2 });
  const y1 = T.noGrad(() => m.forward(x)).toArray();
  const m2 = new TwoLayer();
  m2.loadStateDict(m.stateDict());
  const y2 = T.noGrad(() => m2.forward(x)).toArray();
  assert.deepEqual(y1, y2);
  assert.equal(m.getModule('blocks.1'), m.blocks[1]);
  m.dispose();
  m2.dispose();
  x.dispose();
});

test('Module: loadStateDict names missing, unexpected and mis-shaped keys', () => {
  const m = new TwoLayer();
  const sd = { ...m.stateDict() };
  delete (sd as Record<string, T.Tensor>)['fc1.bias'];
  assert.throws(() => m.loadStateDict(sd), /missing keys: fc1\.bias/);
  const extra = { ...m.stateDict(), 'head.weight': T.zeros([1]) };
  assert.throws(() => m.loadStateDict(extra), /unexpected keys: head\.weight/);
  assert.deepEqual(m.loadStateDict(extra, { strict: false }).unexpected, ['head.weight']);
  const bad = { ...m.stateDict(), 'fc1.bias': T.zeros([7]) };
  assert.throws(() => m.loadStateDict(bad), /'fc1\.bias' has shape \[7\] in the state dict but \[6\] in the model/);
  m.dispose();
});

test('Module: setParameter swaps a tensor (e.g. bf16 weights) and the field follows', () => {
  const lin = new nn.Linear(3, 2);
  const w = T.cast(lin.weight, 'bfloat16');
  lin.setParameter('weight', w);
  assert.equal(lin.weight, w);
  assert.equal(lin.weight.requiresGrad, false);
  const y = T.noGrad(() => lin.forward(T.ones([1, 3])));
  assert.deepEqual(y.shape, [1, 2]);
  lin.dispose();
});

test('Linear, LayerNorm, RMSNorm, Embedding: gradients through the modules', () => {
  const lin = new nn.Linear(3, 2, { dtype: 'float64' });
  const x = randomTensor([4, 3], 5);
  gradcheck((a, w, b) => T.linear(a, w, b), [x, lin.weight, lin.bias!]);
  const ln = new nn.RMSNorm(3, 1e-6, { dtype: 'float64' });
  gradcheck((a, w) => T.rmsNorm(a, w, 1e-6), [x, ln.weight]);
  const emb = new nn.Embedding(10, 3, { dtype: 'float64' });
  const ids = T.tensor([1, 7, 7, 0], [4], 'int32');
  gradcheck((w) => T.embedding(w, ids), [emb.weight]);
  for (const m of [lin, ln, emb]) m.dispose();
  x.dispose();
  ids.dispose();
});

test('Dropout is identity in eval and scales kept units in training', () => {
  const d = new nn.Dropout(0.5);
  const x = T.ones([1000]);
  d.eval();
  assert.equal(d.forward(x), x);
  d.train();
  const y = d.forward(x).toArray();
  assert.ok(y.every((v) => v === 0 || v === 2));
  const kept = y.filter((v) => v === 2).length;
  assert.ok(kept > 400 && kept < 600, `kept ${kept}`);
  assert.throws(() => new nn.Dropout(1), /Dropout: p must be in \[0, 1\)/);
  x.dispose();
});

test('activation names from configs resolve; unknown names are refused', () => {
  assert.equal(nn.activation('gelu_pytorch_tanh'), T.geluTanh);
  assert.throws(() => nn.activation('mish'), /unknown activation 'mish' \(known: gelu/);
});
