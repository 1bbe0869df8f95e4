/**
 * Finite-difference gradient check. Runs `fn` on float64 inputs, seeds the
 * backward pass with a random cotangent w, and compares each input's analytic
 * gradient with the central difference of <fn(x), w>.
 */
import assert from 'node:assert/strict';
import { Tensor, tensor, backward, noGrad, tidy } from '../../src/tensor/index.ts';

export function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13; s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5; s >>>= 0;
    return s / 4294967296;
  };
}

/** Uniform values in [-1, 1) from a seeded generator. */
export function randomArray(n: number, seed: number, scale = 1): Float64Array {
  const r = rng(seed);
  return Float64Array.from({ length: n }, () => (r() * 2 - 1) * scale);
}

export function randomTensor(shape: number[], seed: number, dtype: 'float32' | 'float64' = 'float64', scale = 1): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  return tensor(randomArray(n, seed, scale), shape, dtype);
}

export interface GradcheckOptions {
  eps?: number;
  atol?: number;
  rtol?: number;
  /** Check only these input indices (others are treated as constants). */
  wrt?: number[];
  /** At most this many coordinates per input are probed (sampled deterministically). */
  maxProbes?: number;
}

export function gradcheck(fn: (...xs: Tensor[]) => Tensor, inputs: Tensor[], opts: GradcheckOptions = {}): void {
  const eps = opts.eps ?? 1e-6;
  const atol = opts.atol ?? 1e-7;
  const rtol = opts.rtol ?? 1e-5;
  const wrt = opts.wrt ?? inputs.map((_, i) => i);
  for (const i of wrt) {
    inputs[i].requiresGrad = true;
    inputs[i].grad?.dispose();
    inputs[i].grad = null;
  }
  let w: Float64Array = new Float64Array(0);
  tidy(() => {
    const out = fn(...inputs);
    w = randomArray(out.size, 12345);
    backward(out, { grad: tensor(w, [...out.shape], out.dtype as 'float64') });
  });
  const f = (): number =>
    noGrad(() =>
      tidy(() => {
        const out = fn(...inputs).toArray();
        let s = 0;
        for (let k = 0; k < out.length; k++) s += out[k] * w[k];
        return s;
      }),
    );
  for (const i of wrt) {
    const x = inputs[i];
    assert.ok(x.grad, `input ${i}: no gradient was computed`);
    const analytic = x.grad!.toArray();
    const data = x.data<Float64Array>();
    const n = x.size;
    const maxProbes = opts.maxProbes ?? 64;
    const step = Math.max(1, Math.floor(n / maxProbes));
    let worst = 0;
    for (let k = 0; k < n; k += step) {
      const orig = data[k];
      data[k] = orig + eps;
      const fp = f();
      data[k] = orig - eps;
      const fm = f();
      data[k] = orig;
      const numeric = (fp - fm) / (2 * eps);
      const diff = Math.abs(numeric - analytic[k]);
      worst = Math.max(worst, diff);
      assert.ok(
        diff <= atol + rtol * Math.abs(numeric),
        `input ${i} [${x.shape}] element ${k}: analytic ${analytic[k]} vs numeric ${numeric} (|diff| ${diff})`,
      );
    }
    x.requiresGrad = false;
    x.grad?.dispose();
    x.grad = null;
  }
}
