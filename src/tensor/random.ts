/**
 * Seeded random tensors. Values come from a counter-based generator in the
 * addon, so the same seed gives the same tensor whatever the thread count.
 * A global generator hands out seeds; `manualSeed` makes runs reproducible.
 */
import { Tensor, empty, type Shape } from './tensor.ts';
import { native } from './native.ts';

interface RandomKernels {
  randomFill(dst: Float32Array | Float64Array, n: number, kind: 0 | 1, a: number, b: number, seed: number): void;
  dropoutMask(dst: Float32Array | Float64Array, n: number, p: number, seed: number): void;
}
const K = native as unknown as RandomKernels;

let state = 0x5eed;
/** Resets the global generator. */
export function manualSeed(seed: number): void {
  if (!Number.isSafeInteger(seed)) throw new RangeError(`manualSeed: seed must be an integer, got ${seed}`);
  state = seed;
}
/** The next seed from the global generator (an integer < 2^48). */
export function nextSeed(): number {
  state = (state * 25214903917 + 11) % 281474976710656;
  return state;
}

type FloatDType = 'float32' | 'float64';
export interface RandomOptions {
  dtype?: FloatDType;
  seed?: number;
}

function checkFloat(dtype: string, op: string): void {
  if (dtype !== 'float32' && dtype !== 'float64') throw new TypeError(`${op}: dtype must be float32 or float64, got ${dtype}`);
}

/** Fills `t` (float32/float64, contiguous) in place with U[low, high). */
export function uniform_(t: Tensor, low: number, high: number, seed = nextSeed()): Tensor {
  checkFloat(t.dtype, 'uniform_');
  K.randomFill(t.data<Float32Array>(), t.size, 0, low, high, seed);
  return t;
}

/** Fills `t` in place with N(mean, std²). */
export function normal_(t: Tensor, mean: number, std: number, seed = nextSeed()): Tensor {
  checkFloat(t.dtype, 'normal_');
  K.randomFill(t.data<Float32Array>(), t.size, 1, mean, std, seed);
  return t;
}

export function rand(shape: Shape, opts: RandomOptions = {}): Tensor {
  return uniform_(empty(shape, opts.dtype ?? 'float32'), 0, 1, opts.seed);
}

export function randn(shape: Shape, opts: RandomOptions = {}): Tensor {
  return normal_(empty(shape, opts.dtype ?? 'float32'), 0, 1, opts.seed);
}

/** A mask of 0 (probability p) and 1/(1-p) values, for inverted dropout. */
export function dropoutMask(shape: Shape, p: number, opts: RandomOptions = {}): Tensor {
  const t = empty(shape, opts.dtype ?? 'float32');
  K.dropoutMask(t.data<Float32Array>(), t.size, p, opts.seed ?? nextSeed());
  return t;
}
