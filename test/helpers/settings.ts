/** Process-wide settings switched around one piece of a test and restored after it, even when it throws. */
import { setNumThreads, numThreads } from '../../src/tensor/index.ts';
import { setMatmulPrecision } from '../../src/tensor/ops/matmul.ts';

/** fn() with the matmul/attention precision switch at `p`. */
export function withPrecision<R>(p: 'f32' | 'bf16', fn: () => R): R {
  const prev = setMatmulPrecision(p);
  try {
    return fn();
  } finally {
    setMatmulPrecision(prev);
  }
}

/** fn() on `n` pool threads. */
export function withThreads<R>(n: number, fn: () => R): R {
  const prev = numThreads();
  setNumThreads(n);
  try {
    return fn();
  } finally {
    setNumThreads(prev);
  }
}
