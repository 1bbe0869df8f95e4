import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as T from '../../src/tensor/index.ts';
import { assertClose } from '../helpers/compare.ts';
import * as E from '../../src/tensor/ops/elementwise.ts';
import * as A from '../../src/tensor/ops/activation.ts';
import { gradcheck, randomTensor, randomArray } from '../helpers/gradcheck.ts';

/** Plain-JS numpy broadcasting of f over two tensors (any layout). */
function refBinary(a: T.Tensor, b: T.Tensor, f: (x: number, y: number) => number): number[] {
  const shape = E.broadcastShapes(a.shape, b.shape);
  const av = a.toArray(), bv = b.toArray();
  const index = (t: T.Tensor, coord: number[]): number => {
    let k = 0;
    const lead = shape.length - t.ndim;
    for (let d = 0; d < t.ndim; d++) k = k * t.shape[d] + (t.shape[d] === 1 ? 0 : coord[d + lead]);
    return k;
  };
  const out: number[] = [];
  const n = shape.reduce((p, s) => p * s, 1);
  for (let i = 0; i < n; i++) {
    const coord = new Array<number>(shape.length);
    let r = i;
    for (let d = shape.length - 1; d >= 0; d--) { coord[d] = r % shape[d]; r = Math.floor(r / shape[d]); }
    out.push(f(av[index(a, coord)], bv[index(b, coord)]));
  }
  return out;
}

// erf for GELU references: Taylor series for |x| < 3, erfc continued fraction beyond (~1e-12 either way).
function erf(x: number): number {
  const z = Math.abs(x);
  if (z >= 3) {
    let k = z;
    for (let n = 60; n >= 1; n--) k = z + n / 2 / k;
    return Math.sign(x) * (1 - Math.exp(-z * z) / Math.sqrt(Math.PI) / k);
  }
  let term = x, sum = x;
  for (let n = 1; n < 80; n++) {
    term *= (-x * x) / n;
    sum += term / (2 * n + 1);
  }
  return (2 / Math.sqrt(Math.PI)) * sum;
}
const sig = (x: number): number => 1 / (1 + Math.exp(-x));
const UNARY_REF: Record<string, [(x: T.Tensor) => T.Tensor, (x: number) => number]> = {
  neg: [E.neg, (x) => -x],
  exp: [E.exp, Math.exp],
  abs: [E.abs, Math.abs],
  tanh: [E.tanh, Math.tanh],
  sigmoid: [E.sigmoid, sig],
  relu: [E.relu, (x) => Math.max(x, 0)],
  square: [E.square, (x) => x * x],
  gelu: [A.gelu, (x) => 0.5 * x * (1 + erf(x / Math.SQRT2))],
  geluTanh: [A.geluTanh, (x) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)))],
  quickGelu: [A.quickGelu, (x) => x * sig(1.702 * x)],
  silu: [A.silu, (x) => x * sig(x)],
};
const POSITIVE_REF: Record<string, [(x: T.Tensor) => T.Tensor, (x: number) => number]> = {
  log: [E.log, Math.log],
  sqrt: [E.sqrt, Math.sqrt],
  rsqrt: [E.rsqrt, (x) => 1 / Math.sqrt(x)],
};

test('binary ops broadcast like numpy, over strided, transposed and empty inputs', () => {
  T.tidy(() => {
    const ops: [string, (a: T.Tensor, b: T.Tensor) => T.Tensor, (x: number, y: number) => number][] = [
      ['add', E.add, (x, y) => x + y], ['sub', E.sub, (x, y) => x - y], ['mul', E.mul, (x, y) => x * y],
      ['div', E.div, (x, y) => x / y], ['maximum', E.maximum, Math.max], ['minimum', E.minimum, Math.min],
      ['pow', (a, b) => E.pow(E.abs(a), b), (x, y) => Math.abs(x) ** y],
      ['addScaled', (a, b) => E.addScaled(a, b, -0.5), (x, y) => x - 0.5 * y],
      ['swiglu', A.swiglu, (x, y) => x * sig(x) * y],
    ];
    const base = randomTensor([3, 4], 7, 'float32', 2);
    const pairs: [string, T.Tensor, T.Tensor][] = [
      ['[2,1,3]x[4,1]', randomTensor([2, 1, 3], 1, 'float32', 2), randomTensor([4, 1], 2, 'float32', 2)],
      ['same shape', randomTensor([5, 6], 3, 'float32', 2), randomTensor([5, 6], 4, 'float32', 2)],
      ['row bias', randomTensor([4, 7], 5, 'float32', 2), randomTensor([7], 6, 'float32', 2)],
      ['scalar', T.scalar(1.5), randomTensor([2, 2], 8, 'float32', 2)],
      ['transposed', T.transpose(base, 0, 1), randomTensor([4, 3], 9, 'float32', 2)],
      ['narrowed', T.narrow(randomTensor([5, 6], 10, 'float32', 2), 1, 2, 3), T.narrow(T.narrow(base, 0, 1, 1), 1, 1, 3)],
      ['expanded', T.expand(randomTensor([1, 3], 11, 'float32', 2), [4, 3]), T.transpose(base, 0, 1)],
      ['empty', T.zeros([0, 3]), randomTensor([3], 12, 'float32', 2)],
    ];
    for (const [name, f, ref] of ops) {
      for (const [what, a, b] of pairs) {
        const out = f(a, b);
        assert.deepEqual(out.shape, E.broadcastShapes(a.shape, b.shape), `${name} ${what}: shape`);
        assertClose(out.toArray(), refBinary(a, b, ref), 1e-6, 1e-5, `${name} ${what}`);
      }
    }
  });
});

test('unary math and activations match JS references (float32 and float64, strided input)', () => {
  T.tidy(() => {
    const x32 = T.reshape(randomTensor([4, 50], 21, 'float32', 6), [4, 50]);
    const x64 = randomTensor([4, 50], 21, 'float64', 6);
    const strided = T.transpose(x32, 0, 1);
    for (const [name, [f, ref]] of Object.entries(UNARY_REF)) {
      assertClose(f(x32).toArray(), x32.toArray().map(ref), 2e-6, 2e-6, `${name} f32`);
      assertClose(f(x64).toArray(), x64.toArray().map(ref), 1e-12, 1e-10, `${name} f64`);
      assertClose(f(strided).toArray(), strided.toArray().map(ref), 2e-6, 2e-6, `${name} strided`);
    }
    const pos = E.addScalar(E.abs(x32), 0.1);
    for (const [name, [f, ref]] of Object.entries(POSITIVE_REF)) {
      assertClose(f(pos).toArray(), pos.toArray().map(ref), 1e-6, 1e-6, `${name} f32`);
    }
    // saturation, infinities and NaN
    const edge = T.tensor([-100, -20, 0, 20, 100, -Infinity, Infinity, NaN]);
    const far = [-80, -20, 20, 80];
    assertClose(E.exp(T.tensor(far)).toArray(), far.map(Math.exp), 0, 2e-6, 'exp far from 0');
    assert.deepEqual(E.exp(T.tensor([-Infinity, Infinity])).toArray(), [0, Infinity]);
    assert.deepEqual(E.tanh(edge).toArray().slice(3, 7), [1, 1, -1, 1]);
    assert.deepEqual(E.sigmoid(T.tensor([-200, 200])).toArray(), [0, 1]);
    for (const f of [E.exp, E.tanh, E.sigmoid, E.relu, A.gelu, A.silu, A.geluTanh]) assert.ok(Number.isNaN(f(edge).toArray()[7]));
  });
});

test('scalar variants, clamp and where', () => {
  T.tidy(() => {
    const x = randomTensor([3, 5], 31, 'float32', 3);
    const xs = x.toArray();
    assertClose(E.addScalar(x, 2.5).toArray(), xs.map((v) => v + 2.5), 1e-6, 0, 'addScalar');
    assertClose(E.mulScalar(x, -3).toArray(), xs.map((v) => v * -3), 1e-6, 0, 'mulScalar');
    const ax = E.abs(x), axs = ax.toArray();
    for (const p of [2, 0.5, -1, 1.7, 3]) assertClose(E.powScalar(ax, p).toArray(), axs.map((v) => v ** p), 1e-6, 1e-5, `powScalar ${p}`);
    assertClose(E.clamp(x, -1, 0.5).toArray(), xs.map((v) => Math.min(Math.max(v, -1), 0.5)), 0, 0, 'clamp');
    assertClose(E.clamp(x, null, 0).toArray(), xs.map((v) => Math.min(v, 0)), 0, 0, 'clamp max only');
    assert.deepEqual(E.clamp(T.tensor([-3, 0, 3, NaN]), 1, -1).toArray(), [-1, -1, -1, NaN], 'clamp with min > max gives max, keeps NaN');
    const cond = T.tensor([1, 0, 1, 0, 0, 1], [2, 1, 3], 'uint8');
    const a = randomTensor([4, 1], 32, 'float32');
    const b = T.scalar(-7);
    const out = E.where(cond, a, b);
    assert.deepEqual(out.shape, [2, 4, 3]);
    const cv = cond.toArray(), av = a.toArray();
    const expect: number[] = [];
    for (let i = 0; i < 2; i++) for (let j = 0; j < 4; j++) for (let k = 0; k < 3; k++) expect.push(cv[i * 3 + k] ? av[j] : -7);
    assertClose(out.toArray(), expect, 0, 0, 'where');
  });
});

test('fused biasAct matches activation(x + bias); swiglu matches silu(gate) * up', () => {
  T.tidy(() => {
    const x = randomTensor([6, 10], 41, 'float32', 3);
    const bias = randomTensor([10], 42, 'float32');
    for (const act of Object.keys(A.ACT) as A.Activation[]) {
      const fused = A.biasAct(x, bias, act).toArray();
      assertClose(fused, A.activate(E.add(x, bias), act).toArray(), 1e-6, 1e-6, `biasAct ${act}`);
      assertClose(A.biasAct(T.transpose(x, 0, 1), null, act).toArray(), A.activate(T.transpose(x, 0, 1), act).toArray(), 1e-6, 1e-6, `act ${act} no bias`);
    }
    const g = randomTensor([5, 8], 43, 'float32', 3), u = randomTensor([5, 8], 44, 'float32', 3);
    assertClose(A.swiglu(g, u).toArray(), E.mul(A.silu(g), u).toArray(), 1e-6, 1e-6, 'swiglu');
  });
});

test('gradients of every differentiable elementwise op match finite differences', () => {
  T.tidy(() => {
    const a = randomTensor([2, 1, 3], 51, 'float64', 2);
    const b = randomTensor([4, 1], 52, 'float64', 2);
    const bPos = E.addScalar(E.abs(randomTensor([4, 1], 53, 'float64')), 0.5);
    const aPos = E.addScalar(E.abs(a), 0.5);
    gradcheck(E.add, [a, b]);
    gradcheck(E.sub, [a, b]);
    gradcheck(E.mul, [a, b]);
    gradcheck(E.div, [a, bPos]);
    gradcheck(E.maximum, [a, b]);
    gradcheck(E.minimum, [a, b]);
    gradcheck(E.pow, [aPos, b]);
    gradcheck((p, q) => E.addScaled(p, q, -1.5), [a, b]);
    gradcheck(A.swiglu, [a, b]);
    const same = randomTensor([3, 4], 54, 'float64', 2);
    gradcheck(A.swiglu, [same, randomTensor([3, 4], 55, 'float64', 2)]);
    gradcheck((p) => E.mul(p, T.transpose(p, 0, 1)), [randomTensor([3, 3], 56, 'float64')]); // same input twice, strided
    const x = randomTensor([3, 5], 57, 'float64', 2);
    const xPos = E.addScalar(E.abs(x), 0.3);
    for (const [f] of Object.values(UNARY_REF)) gradcheck(f, [x], { maxProbes: 15 });
    for (const [f] of Object.values(POSITIVE_REF)) gradcheck(f, [xPos]);
    gradcheck((p) => E.addScalar(p, 3), [x]);
    gradcheck((p) => E.mulScalar(p, -2), [x]);
    gradcheck((p) => E.powScalar(p, 2.5), [xPos]);
    gradcheck((p) => E.powScalar(p, 2), [x]);
    gradcheck((p) => E.clamp(p, -0.5, 0.7), [x]);
    const cond = T.tensor([1, 0, 0, 1, 1], [5], 'uint8');
    gradcheck((p, q) => E.where(cond, p, q), [x, randomTensor([3, 1], 58, 'float64')]);
    const bias = randomTensor([5], 59, 'float64');
    for (const act of Object.keys(A.ACT) as A.Activation[]) gradcheck((p, q) => A.biasAct(p, q, act), [x, bias], { maxProbes: 15 });
    gradcheck((p) => A.biasAct(T.transpose(p, 0, 1), null, 'gelu'), [randomTensor([5, 3], 60, 'float64')]);
  });
});

test('float32 gradients agree with float64 ones (vectorised derivative formulas)', () => {
  T.tidy(() => {
    const v = randomArray(4 * 33, 65, 5);
    const gv = randomArray(4 * 33, 66);
    const gradOf = (dtype: 'float32' | 'float64', f: (x: T.Tensor) => T.Tensor): number[] => {
      const x = T.keep(T.tensor(v, [4, 33], dtype));
      x.requiresGrad = true;
      T.backward(f(x), { grad: T.tensor(gv, [4, 33], dtype) });
      const out = x.grad!.toArray();
      x.dispose();
      return out;
    };
    const bias32 = T.tensor(randomArray(33, 67), [33], 'float32'), bias64 = T.cast(bias32, 'float64');
    for (const [name, [f]] of Object.entries(UNARY_REF)) assertClose(gradOf('float32', f), gradOf('float64', f), 1e-5, 1e-5, `${name} grad`);
    for (const act of Object.keys(A.ACT) as A.Activation[]) {
      assertClose(gradOf('float32', (x) => A.biasAct(x, bias32, act)), gradOf('float64', (x) => A.biasAct(x, bias64, act)), 1e-5, 1e-5, `biasAct ${act} grad`);
    }
    assertClose(gradOf('float32', (x) => A.swiglu(x, E.mulScalar(x, 0.5))), gradOf('float64', (x) => A.swiglu(x, E.mulScalar(x, 0.5))), 1e-5, 1e-5, 'swiglu grad');
  });
});

test('results do not depend on the thread count', () => {
  const prev = T.numThreads();
  try {
    T.tidy(() => {
      const a = randomTensor([300, 1000], 61, 'float32', 3);
      const b = randomTensor([1000], 62, 'float32', 3);
      const bias = randomTensor([1000], 63, 'float32');
      const run = (): number[][] => [
        E.add(a, b), E.mul(T.transpose(T.reshape(a, [1000, 300]), 0, 1), T.scalar(2)), A.gelu(a), E.exp(a), A.swiglu(a, b),
        A.biasAct(a, bias, 'silu'),
      ].map((t) => t.toArray());
      T.setNumThreads(1);
      const one = run();
      T.setNumThreads(2);
      const two = run();
      one.forEach((v, i) => assert.deepEqual(v, two[i], `output ${i} differs between 1 and 2 threads`));
    });
  } finally {
    T.setNumThreads(prev);
  }
});

test('portable and AVX-512 paths agree', () => {
  T.tidy(() => {
    const a = randomTensor([50, 99], 71, 'float32', 4);
    const b = randomTensor([99], 72, 'float32', 4);
    const ops: [string, () => T.Tensor][] = [
      ['add', () => E.add(a, b)], ['exp', () => E.exp(a)], ['tanh', () => E.tanh(a)], ['gelu', () => A.gelu(a)],
      ['geluTanh', () => A.geluTanh(a)], ['silu', () => A.silu(a)], ['sigmoid', () => E.sigmoid(a)],
      ['biasAct', () => A.biasAct(a, b, 'quickGelu')], ['rsqrt', () => E.rsqrt(E.abs(a))],
    ];
    T.native.setIsa('portable');
    let portable: number[][];
    try {
      portable = ops.map(([, f]) => f().toArray());
    } finally {
      T.native.setIsa('avx512');
    }
    ops.forEach(([name, f], i) => assertClose(f().toArray(), portable[i], 1e-6, 1e-6, `${name} portable vs avx512`));
  });
});

test('bad inputs throw errors naming the op and shapes', () => {
  T.tidy(() => {
    const f32 = T.zeros([2, 3]), f64 = T.zeros([2, 3], 'float64'), i32 = T.zeros([2, 3], 'int32');
    assert.throws(() => E.add(f32, f64), /add: dtype mismatch float32 vs float64/);
    assert.throws(() => E.mul(f32, T.zeros([4])), /mul: shapes \[2,3\] and \[4\] cannot be broadcast/);
    assert.throws(() => E.exp(i32), /exp: unsupported dtype int32/);
    assert.throws(() => E.where(f32, f32, f32), /where: cond must be uint8/);
    assert.throws(() => A.biasAct(f32, T.zeros([4]), 'relu'), /biasAct: bias \[4\] does not match the last dim of x \[2,3\]/);
    assert.throws(() => A.biasAct(f32, null, 'swish' as A.Activation), /biasAct: unknown activation 'swish'/);
    assert.throws(() => E.clamp(f32, NaN), /clamp: bounds must not be NaN/);
    // The native layer bounds-checks views against their storage.
    const K = T.native as unknown as { ewUnary(...args: unknown[]): void };
    assert.throws(() => K.ewUnary(0, new Float32Array(6), new Float32Array(4), 0, [3, 1], [2, 3], 0, 0), /ewUnary: 'x' view reaches element 5 of a storage with 4 elements/);
  });
});

test('ops record nothing without requiresGrad and free inputs on dispose', () => {
  const before = T.nativeMemory().blocks;
  T.tidy(() => {
    const x = T.tensor(randomArray(12, 81), [3, 4], 'float64');
    x.requiresGrad = true;
    const y = E.mul(A.gelu(x), E.exp(x));
    T.backward(E.mulScalar(y, 1), { grad: T.onesLike(y) });
    assert.ok(x.grad);
    assert.equal(E.add(T.zeros([2]), T.zeros([2])).node, null);
    x.grad!.dispose();
  });
  assert.equal(T.nativeMemory().blocks, before, 'native blocks leaked');
});
