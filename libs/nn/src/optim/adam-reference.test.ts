import { describe, expect, it } from 'vitest';
import { Rng } from '../rng.js';
import { randomFloats } from '../testing/numeric.js';
import { adamReference, type AdamConstants } from './adam-reference.js';

const bits = (x: Float32Array) => Array.from(new Uint32Array(x.buffer, x.byteOffset, x.length));

/**
 * Adam written independently of adamReference's Math.fround: every intermediate is stored into a float32 cell
 * (a Float32Array rounds on store), so each operation is one float32 operation.
 */
function adamThroughFloat32Cells(p: Float32Array, gradSum: Float32Array, m: Float32Array, v: Float32Array, c: AdamConstants): void {
  const k = Float32Array.from([c.invBatch, c.l2, c.b1, c.a1, c.b2, c.a2, c.step, c.invC2, c.shrink, c.eps]);
  const [invBatch, l2, b1, a1, b2, a2, step, invC2, shrink, eps] = k;
  const t = new Float32Array(12);
  for (let i = 0; i < p.length; i++) {
    t[0] = gradSum[i] * invBatch;
    t[1] = l2 * p[i];
    t[2] = t[0] + t[1]; // g
    t[3] = b1 * m[i];
    t[4] = a1 * t[2];
    m[i] = t[3] + t[4];
    t[5] = b2 * v[i];
    t[6] = a2 * t[2];
    t[7] = t[6] * t[2];
    v[i] = t[5] + t[7];
    t[8] = v[i] * invC2;
    t[8] = Math.sqrt(t[8]);
    t[8] = t[8] + eps; // denominator
    t[9] = step * m[i];
    t[10] = t[9] / t[8];
    t[11] = p[i] * shrink;
    p[i] = t[11] - t[10];
  }
}

/** The same step in double precision, rounded to float32 only on store (the kernels before they became float32). */
function adamInDouble(p: Float32Array, gradSum: Float32Array, m: Float32Array, v: Float32Array, c: AdamConstants): void {
  for (let i = 0; i < p.length; i++) {
    const g = gradSum[i] * c.invBatch + c.l2 * p[i];
    const mi = c.b1 * m[i] + c.a1 * g;
    const vi = c.b2 * v[i] + c.a2 * g * g;
    m[i] = mi;
    v[i] = vi;
    p[i] = p[i] * c.shrink - (c.step * mi) / (Math.sqrt(vi * c.invC2) + c.eps);
  }
}

describe('adamReference', () => {
  it.each([
    ['Adam with L2', 1 / 64, 0.01, 1],
    ['AdamW', 1 / 37, 0, 1 - 0.003 * 0.1],
  ])('%s: every operation is one float32 operation, which double precision does not reproduce', (_what, invBatch, l2, shrink) => {
    const rng = new Rng(7);
    const n = 5000;
    const lr = 0.003;
    const t = 3;
    const [b1, b2] = [0.9, 0.999];
    const c: AdamConstants = {
      invBatch,
      l2,
      b1,
      a1: 1 - b1,
      b2,
      a2: 1 - b2,
      step: lr / (1 - b1 ** t),
      invC2: 1 / (1 - b2 ** t),
      shrink,
      eps: 1e-8,
    };
    const start = [
      randomFloats(rng, n, -2, 2, 0.1),
      randomFloats(rng, n, -50, 50, 0.2),
      randomFloats(rng, n, -1, 1),
      randomFloats(rng, n, 0, 1),
    ];
    const run = (kernel: typeof adamReference) => {
      const [p, g, m, v] = start.map((x) => x.slice());
      kernel(p, g, m, v, c);
      return [p, m, v].map(bits);
    };
    const want = run(adamThroughFloat32Cells);
    expect(run(adamReference)).toEqual(want);
    // The test can tell: rounding only on store gives other bits for some parameters.
    const double = run(adamInDouble);
    expect(double[0].filter((b, i) => b !== want[0][i]).length).toBeGreaterThan(0);
  });
});
