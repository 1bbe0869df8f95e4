/**
 * Memory scopes. Every tensor created while a scope is open is recorded in
 * it; when `tidy` returns, all of them are disposed except what the function
 * returned (and anything passed to `keep`). Scopes nest: returned tensors move
 * to the enclosing scope.
 */
import type { Tensor } from './tensor.ts';

const stack: Set<Tensor>[] = [];

export function trackTensor(t: Tensor): void {
  const top = stack[stack.length - 1];
  if (top) top.add(t);
}

/** Removes `t` from every open scope, so it outlives them (parameters, caches, results). */
export function keep<T extends Tensor>(t: T): T {
  for (const s of stack) s.delete(t);
  return t;
}

function collect(x: unknown, out: Set<Tensor>, depth = 0): void {
  if (x == null || depth > 4) return;
  if (typeof x === 'object' && 'isTensor' in (x as object) && (x as { isTensor: unknown }).isTensor === true) {
    out.add(x as Tensor);
    return;
  }
  if (Array.isArray(x)) for (const v of x) collect(v, out, depth + 1);
  else if (x instanceof Map) for (const v of x.values()) collect(v, out, depth + 1);
  else if (typeof x === 'object' && Object.getPrototypeOf(x) === Object.prototype) {
    for (const v of Object.values(x as object)) collect(v, out, depth + 1);
  }
}

/**
 * Runs `fn` in a new scope and disposes every tensor it created that is not
 * part of its result (a tensor, or arrays/plain objects/Maps containing tensors).
 * Synchronous functions only: an async function would let other work's
 * tensors into the scope.
 */
export function tidy<R>(fn: () => R): R {
  const scope = new Set<Tensor>();
  stack.push(scope);
  let result: R;
  try {
    result = fn();
  } catch (e) {
    stack.pop();
    for (const t of scope) t.dispose();
    throw e;
  }
  stack.pop();
  if (result instanceof Promise) throw new Error('tidy: the function must be synchronous');
  const kept = new Set<Tensor>();
  collect(result, kept);
  for (const t of scope) if (!kept.has(t)) t.dispose();
  const parent = stack[stack.length - 1];
  if (parent) for (const t of kept) if (scope.has(t)) parent.add(t);
  return result;
}

/** True if `t` was created in the innermost open scope (and not kept). */
export function inCurrentScope(t: Tensor): boolean {
  const top = stack[stack.length - 1];
  return top ? top.has(t) : false;
}

/** Number of open scopes (for tests). */
export function scopeDepth(): number {
  return stack.length;
}
