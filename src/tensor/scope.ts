import type { Tensor } from './tensor.js';

/**
 * Deterministic lifetime: every tensor handle created inside `scope(fn)` is disposed when fn returns,
 * except the ones fn returns (anywhere in an array/object result) and the ones passed to `keep()`.
 * Scopes nest; a returned tensor moves to the enclosing scope.
 */
class Scope {
  readonly tensors: Tensor[] = [];
  track(t: Tensor): void {
    this.tensors.push(t);
  }
}

const stack: Scope[] = [];
let gradDepth = 0;
const kept = new WeakSet<Tensor>();

export function currentScope(): Scope | undefined {
  return stack[stack.length - 1];
}

function collect(value: unknown, out: Set<Tensor>, depth = 0): void {
  if (value === null || typeof value !== 'object' || depth > 4) return;
  if ((value as { storage?: unknown }).storage !== undefined && (value as { shape?: unknown }).shape !== undefined) {
    out.add(value as Tensor);
    return;
  }
  if (Array.isArray(value)) for (const v of value) collect(v, out, depth + 1);
  else if (value instanceof Map) for (const v of value.values()) collect(v, out, depth + 1);
  else if (Object.getPrototypeOf(value) === Object.prototype) for (const v of Object.values(value)) collect(v, out, depth + 1);
}

function exit(s: Scope, result: unknown): void {
  const keepSet = new Set<Tensor>();
  collect(result, keepSet);
  const parent = currentScope();
  // Newest first: the pool's free lists are LIFO, so the next iteration of a loop gets the same
  // buffers in the same order, and its bind groups come from the cache.
  for (let i = s.tensors.length - 1; i >= 0; i--) {
    const t = s.tensors[i] as Tensor;
    if (keepSet.has(t)) parent?.track(t);
    else if (kept.has(t)) kept.delete(t);
    else t.dispose();
  }
}

export function scope<T>(fn: () => T): T {
  const s = new Scope();
  stack.push(s);
  let result: T;
  try {
    result = fn();
  } catch (e) {
    stack.pop();
    exit(s, undefined);
    throw e;
  }
  stack.pop();
  if (result instanceof Promise) throw new TypeError('scope(fn): fn must be synchronous; use scopeAsync');
  exit(s, result);
  return result;
}

/** Like scope(), for async work (tensors created by concurrent tasks in between are also tracked). */
export async function scopeAsync<T>(fn: () => Promise<T>): Promise<T> {
  const s = new Scope();
  stack.push(s);
  let result: T;
  try {
    result = await fn();
  } catch (e) {
    stack.splice(stack.indexOf(s), 1);
    exit(s, undefined);
    throw e;
  }
  stack.splice(stack.indexOf(s), 1);
  exit(s, result);
  return result;
}

/** Exempts tensors from disposal by the current scope (they become the caller's to dispose). */
export function keep<T extends Tensor>(t: T): T {
  kept.add(t);
  return t;
}

/** Runs fn with no scope active: tensors it creates are the caller's to dispose. */
export function withoutScope<T>(fn: () => T): T {
  const saved = stack.splice(0, stack.length);
  try {
    return fn();
  } finally {
    stack.push(...saved);
  }
}

export function noGrad<T>(fn: () => T): T {
  gradDepth++;
  try {
    return fn();
  } finally {
    gradDepth--;
  }
}

/**
 * Runs fn with the tape on even inside noGrad (a backward rule that re-runs a forward: gradient
 * checkpointing); the enclosing noGrad depth is restored afterwards.
 */
export function enableGrad<T>(fn: () => T): T {
  const saved = gradDepth;
  gradDepth = 0;
  try {
    return fn();
  } finally {
    gradDepth = saved;
  }
}

export function gradEnabled(): boolean {
  return gradDepth === 0;
}
