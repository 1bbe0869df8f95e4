/** Comparisons shared by the kernel tests. */
import assert from 'node:assert/strict';
import * as T from '../../src/tensor/index.ts';

/** Element-wise |actual − expected| ≤ atol + rtol·|expected|; equal values (incl. NaN, ±∞) pass. Names the worst element. */
export function assertClose(actual: number[], expected: number[], atol: number, rtol: number, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length ${actual.length} vs ${expected.length}`);
  let worst = 0, at = -1;
  for (let i = 0; i < actual.length; i++) {
    const e = expected[i], a = actual[i];
    if (Object.is(e, a)) continue;
    const d = Math.abs(a - e);
    if (!(d <= atol + rtol * Math.abs(e)) && (d > worst || Number.isNaN(d))) { worst = d; at = i; }
  }
  assert.ok(at < 0, `${what}: element ${at}: ${actual[at]} vs ${expected[at]} (max abs diff ${worst})`);
}

/**
 * Runs `run` on 1 thread, on 2 threads and on the portable kernels: the two
 * thread counts must give bit-identical outputs (kernels split work so the
 * summation order does not depend on it), the portable path the AVX-512
 * results within atol/rtol (its summation order differs).
 */
export function assertThreadAndIsaInvariant(what: string, run: () => number[][], atol: number, rtol: number): void {
  const prevThreads = T.numThreads();
  try {
    T.setNumThreads(1);
    const one = run();
    T.setNumThreads(2);
    const two = run();
    one.forEach((v, i) => assert.deepEqual(v, two[i], `${what} output ${i} differs between 1 and 2 threads`));
    T.native.setIsa('portable');
    let portable: number[][];
    try {
      portable = run();
    } finally {
      T.native.setIsa('avx512'); // capped at what the CPU has
    }
    two.forEach((v, i) => assertClose(v, portable[i], atol, rtol, `${what} output ${i} portable vs avx512`));
  } finally {
    T.setNumThreads(prevThreads);
  }
}
