import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tensor, native, setNumThreads, numThreads, castInto, empty, cast, linear } from '../../src/tensor/index.ts';
import { setMatmulPrecision } from '../../src/tensor/ops/matmul.ts';
import { quantizeWeight, dequantizeWeight, quantLinear, quantizedWeightFrom, quantizedBytes, disposeQuantized } from '../../src/tensor/ops/quant.ts';
import { randomArray } from '../helpers/gradcheck.ts';

const f16 = (h: number): number => {
  const s = h & 0x8000 ? -1 : 1, e = (h >> 10) & 0x1f, m = h & 0x3ff;
  return e === 0 ? s * m * 2 ** -24 : s * (1 + m / 1024) * 2 ** (e - 15);
};

/** Plain-JS y = x · Wᵀ + b in float64. */
function refLinear(x: Float32Array, W: Float32Array, b: Float32Array | null, M: number, K: number, N: number): Float64Array {
  const y = new Float64Array(M * N);
  for (let m = 0; m < M; m++)
    for (let n = 0; n < N; n++) {
      let s = b ? b[n]! : 0;
      for (let k = 0; k < K; k++) s += x[m * K + k]! * W[n * K + k]!;
      y[m * N + n] = s;
    }
  return y;
}

function maxRelDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let d = 0, s = 0;
  for (let i = 0; i < a.length; i++) {
    d = Math.max(d, Math.abs(a[i]! - b[i]!));
    s = Math.max(s, Math.abs(b[i]!));
  }
  return d / Math.max(s, 1e-12);
}

for (const bits of [8, 4] as const) {
  test(`int${bits}: quantise → dequantise error within half a step (one step at the int4 clamp)`, () => {
    const N = 19, K = 256, G = bits === 4 ? 32 : 64;
    const wd = Float32Array.from(randomArray(N * K, 11 + bits, 0.5));
    wd[5] = 3; // an outlier: its group gets a coarse step, others do not
    const w = tensor(wd, [N, K]);
    const qw = quantizeWeight(w, bits, G);
    assert.equal(qw.q.dtype, bits === 8 ? 'int8' : 'uint8');
    assert.deepEqual(qw.scales.shape, [N, K / G]);
    assert.equal(quantizedBytes(qw), N * K * (bits / 8) + N * (K / G) * 2);
    const dq = dequantizeWeight(qw).data<Float32Array>();
    const sc = qw.scales.data<Uint16Array>();
    let worst = 0;
    for (let n = 0; n < N; n++)
      for (let k = 0; k < K; k++) {
        const s = Math.abs(f16(sc[n * (K / G) + Math.floor(k / G)]!));
        const err = Math.abs(dq[n * K + k]! - wd[n * K + k]!);
        worst = Math.max(worst, err / s);
      }
    assert.ok(worst <= (bits === 8 ? 0.5 : 1) + 1e-4, `max error ${worst} steps`);
    // Mean relative error of the whole matrix (the accuracy cost, reported in docs/generation.md).
    let e2 = 0, w2 = 0;
    for (let i = 0; i < wd.length; i++) (e2 += (dq[i]! - wd[i]!) ** 2), (w2 += wd[i]! ** 2);
    assert.ok(Math.sqrt(e2 / w2) < (bits === 8 ? 0.01 : 0.12), `relative RMS error ${Math.sqrt(e2 / w2)}`);
    w.dispose();
    disposeQuantized(qw);
  });

  test(`int${bits}: quantLinear equals dequantise-then-f32 matmul (GEMV and GEMM paths, portable and AVX-512, 1 and 2 threads)`, () => {
    const int8Act = setInt8Activations(false); // the exact f32-activation kernels here; VNNI is tested below
    const N = 37, K = 192, G = bits === 4 ? 32 : 64;
    const w = tensor(Float32Array.from(randomArray(N * K, 3, 0.2)), [N, K]);
    const bias = tensor(Float32Array.from(randomArray(N, 4)), [N]);
    const qw = quantizeWeight(w, bits, G);
    const dq = dequantizeWeight(qw).data<Float32Array>();
    const threads = numThreads();
    try {
      for (const M of [1, 2, 3, 4, 5, 9, 16, 17, 40]) {
        const x = tensor(Float32Array.from(randomArray(M * K, 100 + M)), [M, K]);
        const ref = refLinear(x.data<Float32Array>(), dq, bias.data<Float32Array>(), M, K, N);
        const outs: Float32Array[] = [];
        for (const isa of ['portable', 'avx512'] as const) {
          native.setIsa(isa);
          for (const t of [1, 2]) {
            setNumThreads(t);
            const y = quantLinear(x, qw, bias);
            assert.deepEqual(y.shape, [M, N]);
            const d = maxRelDiff(y.data<Float32Array>(), ref);
            assert.ok(d < 2e-5, `M=${M} ${isa} ${t} thr: max rel diff ${d}`);
            outs.push(Float32Array.from(y.data<Float32Array>()));
            y.dispose();
          }
        }
        // Thread count never changes a result (each output is computed by one task in a fixed order).
        assert.deepEqual(outs[0], outs[1], `portable M=${M}`);
        assert.deepEqual(outs[2], outs[3], `avx512 M=${M}`);
        x.dispose();
      }
      // Leading batch dims are flattened; no bias.
      const x3 = tensor(Float32Array.from(randomArray(2 * 3 * K, 7)), [2, 3, K]);
      const y3 = quantLinear(x3, qw);
      assert.deepEqual(y3.shape, [2, 3, N]);
      assert.ok(maxRelDiff(y3.data<Float32Array>(), refLinear(x3.data<Float32Array>(), dq, null, 6, K, N)) < 2e-5);
      x3.dispose();
      y3.dispose();
    } finally {
      native.setIsa('avx512');
      setNumThreads(threads);
      setInt8Activations(int8Act);
      w.dispose();
      bias.dispose();
      disposeQuantized(qw);
    }
  });

  test(`int${bits}: VNNI path with int8 activations equals its integer reference; its error vs f32 activations is small`,
    { skip: !native.cpu.avx512vnni && 'no avx512_vnni' }, () => {
      // K = 640 covers the kernel's 4-chunk groups and the chunks after the last full group.
      const N = 37;
      const groups = bits === 4 ? [32, 128] : [64, 128];
      const threads = numThreads();
      try {
        for (const K of [256, 640]) for (const G of groups) {
          const w = tensor(Float32Array.from(randomArray(N * K, 21, 0.2)), [N, K]);
          const qw = quantizeWeight(w, bits, G);
          const dq = dequantizeWeight(qw).data<Float32Array>();
          for (const M of [1, 3, 4, 6, 16, 40]) {
            const xd = Float32Array.from(randomArray(M * K, 40 + M));
            const x = tensor(xd, [M, K]);
            setInt8Activations(true);
            const outs = [1, 2].map((t) => {
              setNumThreads(t);
              const y = quantLinear(x, qw);
              const a = Float32Array.from(y.data<Float32Array>());
              y.dispose();
              return a;
            });
            assert.deepEqual(outs[0], outs[1], 'thread count does not change the result');
            const ref = refLinear(quantizeActivations(xd), dq, null, M, K, N);
            const d = maxRelDiff(outs[0]!, ref);
            assert.ok(d < 2e-5, `K=${K} G=${G} M=${M}: vs integer reference max rel diff ${d}`);
            const exact = refLinear(xd, dq, null, M, K, N);
            const e = maxRelDiff(outs[0]!, exact);
            assert.ok(e < 0.02, `K=${K} G=${G} M=${M}: int8 activations cost ${e} (max error / max |y|)`);
            x.dispose();
          }
          w.dispose();
          disposeQuantized(qw);
        }
      } finally {
        setInt8Activations(true);
        setNumThreads(threads);
      }
    });
}

const hasAmxBf16 = !!(native.cpu as { amxBf16?: boolean }).amxBf16;

for (const bits of [8, 4] as const) {
  // Prefill-sized products under the bf16 switch: weight tiles dequantised to bf16 and multiplied on AMX
  // tiles. The result is exactly the AMX product with the dequantised weights cast to bf16.
  test(`int${bits}: bf16 switch on AMX, prefill-sized rows: equals the bf16 GEMM of the dequantised weights`,
    { skip: !hasAmxBf16 && 'no AMX-BF16 on this CPU' }, () => {
      const prev = setMatmulPrecision('bf16'), threads = numThreads();
      try {
        for (const [M, K, N] of [[20, 256, 70], [64, 512, 300], [300, 128, 33]]) {
          const G = bits === 4 ? 32 : 128;
          const w = tensor(Float32Array.from(randomArray(N * K, 3 + M, 0.5)), [N, K]);
          const x = tensor(Float32Array.from(randomArray(M * K, 4 + M)), [M, K]);
          const b = tensor(Float32Array.from(randomArray(N, 5 + M)), [N]);
          const qw = quantizeWeight(w, bits, G);
          const deq = dequantizeWeight(qw), wb = cast(deq, 'bfloat16');
          const want = linear(x, wb, b).toArray();
          for (const t of [1, 2]) {
            setNumThreads(t);
            assert.deepEqual(quantLinear(x, qw, b).toArray(), want, `${M}x${K}x${N}, ${t} thread(s)`);
          }
          for (const t of [w, x, b, deq, wb]) t.dispose();
          disposeQuantized(qw);
        }
      } finally {
        setMatmulPrecision(prev);
        setNumThreads(threads);
      }
    });
}

/** The VNNI kernel's activation rule: per block of 32, scale absmax/127, round half to even. */
function quantizeActivations(x: Float32Array): Float32Array {
  const out = new Float32Array(x.length);
  for (let b = 0; b < x.length; b += 32) {
    let amax = 0;
    for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(x[b + j]!));
    const inv = amax > 0 ? Math.fround(127 / amax) : 0;
    const s = Math.fround(amax / 127);
    for (let j = 0; j < 32; j++) {
      const v = Math.fround(x[b + j]! * inv);
      let q = Math.round(v);
      if (Math.abs(v - Math.trunc(v)) === 0.5 && q % 2 !== 0) q -= 1; // half to even, like nearbyint
      out[b + j] = q * s;
    }
  }
  return out;
}

function setInt8Activations(on: boolean): boolean {
  const f = native.quantInt8Activations as (on?: boolean) => boolean;
  const before = f();
  f(on);
  return before;
}

test('decode-sized matmuls over many weight blocks (threads split the rows): every row once, thread count does not change the result', () => {
  // Big enough for the threaded decode schedule (≥ 32 KiB of weights, several
  // ~64 KiB blocks per thread, a ragged last block).
  const threads = numThreads();
  const int8Act = setInt8Activations(false);
  try {
    for (const bits of [8, 4] as const) {
      const N = 2403, K = 256, G = bits === 4 ? 32 : 128;
      const w = tensor(Float32Array.from(randomArray(N * K, 31 + bits, 0.2)), [N, K]);
      const bias = tensor(Float32Array.from(randomArray(N, 32)), [N]);
      const qw = quantizeWeight(w, bits, G);
      const dq = dequantizeWeight(qw).data<Float32Array>();
      for (const M of [1, 2, 4]) {
        const xd = Float32Array.from(randomArray(M * K, 50 + M));
        const x = tensor(xd, [M, K]);
        for (const int8 of native.cpu.avx512vnni ? [false, true] : [false]) {
          setInt8Activations(int8);
          const outs = [1, 2, 3, 2].map((t) => {
            setNumThreads(t);
            const y = quantLinear(x, qw, bias);
            const a = Float32Array.from(y.data<Float32Array>());
            y.dispose();
            return a;
          });
          for (let i = 1; i < outs.length; i++) assert.deepEqual(outs[i], outs[0], `int${bits} M=${M} int8 act ${int8}: run ${i}`);
          const ref = refLinear(int8 ? quantizeActivations(xd) : xd, dq, bias.data<Float32Array>(), M, K, N);
          const d = maxRelDiff(outs[0]!, ref);
          assert.ok(d < 2e-5, `int${bits} M=${M} int8 act ${int8}: max rel diff ${d}`);
        }
        x.dispose();
      }
      w.dispose();
      bias.dispose();
      disposeQuantized(qw);
    }
  } finally {
    setInt8Activations(int8Act);
    setNumThreads(threads);
  }
});

test('bfloat16 weights quantise like their float32 values', () => {
  const N = 8, K = 64;
  const w = tensor(Float32Array.from(randomArray(N * K, 5)), [N, K]);
  const wb = empty([N, K], 'bfloat16');
  castInto(w, wb);
  const wf = empty([N, K], 'float32');
  castInto(wb, wf);
  for (const bits of [4, 8] as const) {
    const a = quantizeWeight(wb, bits, 32), b = quantizeWeight(wf, bits, 32);
    assert.deepEqual(a.q.toArray(), b.q.toArray());
    assert.deepEqual(a.scales.toArray(), b.scales.toArray());
    disposeQuantized(a);
    disposeQuantized(b);
  }
  for (const t of [w, wb, wf]) t.dispose();
});

test('bad inputs name the op and the shapes', () => {
  const w = tensor(new Float32Array(4 * 48), [4, 48]);
  assert.throws(() => quantizeWeight(w, 4, 32), /quantizeWeight: input features 48 must be a multiple of groupSize 32/);
  assert.throws(() => quantizeWeight(w, 3 as 4, 48), /quantizeWeight: bits must be 4 or 8/);
  assert.throws(() => quantizeWeight(w, 8, 40), /groupSize must be a positive multiple of 32/);
  const w2 = tensor(new Float32Array(4 * 64), [4, 64]);
  const qw = quantizeWeight(w2, 8, 64);
  const x = tensor(new Float32Array(3 * 32), [3, 32]);
  assert.throws(() => quantLinear(x, qw), /quantLinear: x \[3,32\] must end in the weight's input features 64/);
  assert.throws(() => quantLinear(tensor(new Float32Array(64), [64]), qw, tensor(new Float32Array(3), [3])), /quantLinear: bias must be float32 \[4\]/);
  assert.throws(() => quantizedWeightFrom(qw.q, qw.scales, 4, 64, [4, 64]), /q must be contiguous uint8 \[4,32\]/);
  assert.throws(() => (native.quantMatmul as (...a: unknown[]) => void)(8, 64, new Float32Array(10), 1, 64, 4, new Uint8Array(256), new Uint16Array(4), null, new Float32Array(4)),
    /quantMatmul: argument 'x' needs 64 elements but has 10/);
  disposeQuantized(qw);
  for (const t of [w, w2, x]) t.dispose();
});
