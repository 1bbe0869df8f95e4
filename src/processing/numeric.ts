/**
 * Python/numpy numeric semantics that the reference preprocessing depends on.
 * JavaScript's Math.round and toFixed round ties upward, while Python's round()
 * and numpy's .round() round ties to even; sizes and timestamps differ on ties.
 */

/** Python 3 `round(x)` / numpy `rint`: nearest integer, ties to even. */
export function roundHalfEven(x: number): number {
  if (!Number.isFinite(x)) return x;
  const f = Math.floor(x);
  const diff = x - f; // exact for |x| < 2^52
  if (diff < 0.5) return f;
  if (diff > 0.5) return f + 1;
  return f % 2 === 0 ? f : f + 1;
}

/**
 * Python `str(round(x, 1))` for a non-huge float: the value correctly rounded to one
 * decimal, exact binary ties to the even digit, always printed with one decimal
 * ("0.0", "2.0", "12.5"). An exact tie at one decimal happens only when 4·x is an odd
 * integer (x = 0.25, 0.75, …); every other value is correctly rounded by toFixed(1),
 * which works on the exact binary value.
 */
export function formatRound1(x: number): string {
  if (!Number.isFinite(x)) throw new RangeError(`cannot format ${x}`);
  const q = 4 * x; // exact
  let tenths: number;
  if (Number.isInteger(q) && q % 2 !== 0) {
    tenths = roundHalfEven(x * 10); // x·10 = 2.5·q is exact here
  } else {
    const s = x.toFixed(1);
    tenths = Math.round(Number(s) * 10); // s has one decimal, so this recovers the integer exactly
  }
  const neg = tenths < 0;
  const a = Math.abs(tenths);
  // Python prints -0.0 for round(-0.04, 1); keep the sign when x is negative.
  const sign = neg || (a === 0 && (x < 0 || Object.is(x, -0))) ? '-' : '';
  return `${sign}${Math.floor(a / 10)}.${a % 10}`;
}

/** Python `round(x, 1)` as a number (the double nearest to the printed value). */
export function round1(x: number): number {
  return Number(formatRound1(x));
}

/**
 * `numpy.linspace(start, stop, n)` with endpoint=True: start + i·step, with the last
 * element forced to `stop`. (torch.linspace differs: it fills the upper half from the end.)
 */
export function numpyLinspace(start: number, stop: number, n: number): number[] {
  if (!Number.isInteger(n) || n < 0) throw new RangeError(`linspace needs a count ≥ 0, got ${n}`);
  if (n === 0) return [];
  if (n === 1) return [start];
  const step = (stop - start) / (n - 1);
  const out = new Array<number>(n);
  for (let i = 0; i < n; i++) out[i] = i * step + start;
  out[n - 1] = stop;
  return out;
}

/** `numpy.linspace(start, stop, n).round()` as integers. */
export function linspaceIndices(start: number, stop: number, n: number): number[] {
  return numpyLinspace(start, stop, n).map(roundHalfEven);
}
