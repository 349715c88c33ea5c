// Test helpers for libs/nn (not part of the library build: tsconfig.lib.json excludes src/testing).
import { ConfigError } from '../config-error.js';
import type { Rng } from '../rng.js';

/** n floats uniform in [lo, hi), each zero with probability `zeroFraction` (like image pixels). */
export function randomFloats(rng: Rng, n: number, lo = -1, hi = 1, zeroFraction = 0): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = rng.nextFloat() < zeroFraction ? 0 : lo + (hi - lo) * rng.nextFloat();
  return out;
}

/**
 * Central differences of `loss` with respect to each value of `x` (float32), restoring x afterwards.
 * The step is the one actually stored: (L(x+h) - L(x-h)) / (f32(x+h) - f32(x-h)).
 */
export function numericGradient(loss: () => number, x: Float32Array, eps: number): Float64Array {
  const grad = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const saved = x[i];
    x[i] = saved + eps;
    const up = x[i];
    const lossUp = loss();
    x[i] = saved - eps;
    const down = x[i];
    const lossDown = loss();
    x[i] = saved;
    grad[i] = (lossUp - lossDown) / (up - down);
  }
  return grad;
}

/** The first index where |actual - expected| > abs + rel·|expected| (or the lengths differ), else null. */
export function firstMismatch(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  abs: number,
  rel: number,
): { index: number; actual: number; expected: number } | null {
  if (actual.length !== expected.length) return { index: -1, actual: actual.length, expected: expected.length };
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i];
    const e = expected[i];
    if (!(Math.abs(a - e) <= abs + rel * Math.abs(e))) return { index: i, actual: a, expected: e };
  }
  return null;
}

/** Σ r[i]·y[i] in double precision: a scalar loss whose gradient with respect to y is r. */
export function dotLoss(r: ArrayLike<number>, y: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < r.length; i++) s += r[i] * y[i];
  return s;
}

/** The ConfigError `fn` throws (any other outcome fails the test with a message saying what happened). */
export function configErrorOf(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (e) {
    if (e instanceof ConfigError) return e;
    throw new Error(`expected a ConfigError, got ${String(e)}`);
  }
  throw new Error('expected a ConfigError, nothing was thrown');
}
