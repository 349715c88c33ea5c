import { describe, expect, it } from 'vitest';
import type { Gemm } from './gemm.js';
import { gemmFast } from './gemm-fast.js';
import { gemmReference } from './gemm-reference.js';
import { createGemmWasm, gemmWasm, gemmWasmSkipZeros, WASM_KERNEL } from './gemm-wasm.js';
import { Rng } from '../rng.js';
import { randomFloats } from '../testing/numeric.js';

const SIZES = [1, 3, 17, 129];
const SHAPES = SIZES.flatMap((m) => SIZES.flatMap((n) => SIZES.map((k) => [m, n, k] as const)));
const TRANSPOSES = [
  [false, false],
  [true, false],
  [false, true],
  [true, true],
] as const;

/**
 * The worst |fast - reference| over C, relative to the output's own scale Σ_p |A(i,p)||B(p,j)| (+ |C0| when
 * accumulating), for one (shape, transposes, accumulate, inputs) case.
 */
function worstRelativeError(
  gemm: Gemm,
  transA: boolean,
  transB: boolean,
  m: number,
  n: number,
  k: number,
  sparse: boolean,
  accumulate: boolean,
): number {
  const rng = new Rng(m * 10007 + n * 101 + k + (transA ? 1 : 0) * 3 + (transB ? 1 : 0) * 7 + (sparse ? 1 : 0));
  // Sparse inputs look like images and ReLU outputs: non-negative, 80% exact zeros.
  const a = sparse ? randomFloats(rng, m * k, 0, 1, 0.8) : randomFloats(rng, m * k);
  const b = sparse ? randomFloats(rng, k * n, 0, 1, 0.5) : randomFloats(rng, k * n);
  const c0 = randomFloats(rng, m * n);
  const fast = c0.slice();
  const ref = c0.slice();
  gemm(transA, transB, m, n, k, a, b, fast, accumulate);
  gemmReference(transA, transB, m, n, k, a, b, ref, accumulate);
  let worst = 0;
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let scale = accumulate ? Math.abs(c0[i * n + j]) : 0;
      for (let p = 0; p < k; p++) {
        const av = transA ? a[p * m + i] : a[i * k + p];
        const bv = transB ? b[j * k + p] : b[p * n + j];
        scale += Math.abs(av * bv);
      }
      const err = Math.abs(fast[i * n + j] - ref[i * n + j]) / Math.max(scale, 1e-30);
      if (!(err <= worst)) worst = err; // NaN sticks
    }
  }
  return worst;
}

describe('gemmReference', () => {
  // A = [[1,2],[3,4]], B = [[5,6],[7,8]]; stored transposed where the flag says so.
  it.each([
    [false, false, [1, 2, 3, 4], [5, 6, 7, 8], [19, 22, 43, 50]], // A·B
    [true, false, [1, 3, 2, 4], [5, 6, 7, 8], [19, 22, 43, 50]], // (Aᵀ stored)ᵀ·B
    [false, true, [1, 2, 3, 4], [5, 7, 6, 8], [19, 22, 43, 50]], // A·(Bᵀ stored)ᵀ
    [true, true, [1, 3, 2, 4], [5, 7, 6, 8], [19, 22, 43, 50]],
  ])('multiplies 2×2 matrices by hand (transA=%s, transB=%s)', (transA, transB, a, b, expected) => {
    const c = new Float32Array(4);
    gemmReference(transA, transB, 2, 2, 2, new Float32Array(a), new Float32Array(b), c, false);
    expect(Array.from(c)).toEqual(expected);
  });

  it('multiplies a 2×3 by a 3×1 matrix by hand', () => {
    const c = new Float32Array(2);
    gemmReference(false, false, 2, 1, 3, new Float32Array([1, 2, 3, 4, 5, 6]), new Float32Array([1, 0, -1]), c, false);
    expect(Array.from(c)).toEqual([-2, -2]);
  });
});

const KERNELS: [string, Gemm][] = [
  ['gemmReference', gemmReference],
  ['gemmFast', gemmFast],
  ['gemmWasm', gemmWasm],
  // Both builds, whichever this engine picks for gemmWasm.
  ['gemmWasm relaxed-simd build', createGemmWasm('relaxed-simd')],
  ['gemmWasm simd build', createGemmWasm('simd')],
  ['gemmWasmSkipZeros', gemmWasmSkipZeros],
  ['gemmWasmSkipZeros simd build', createGemmWasm('simd', true)],
];

describe.each(KERNELS)('%s', (_name, gemm) => {
  it('adds to C when accumulating', () => {
    const c = new Float32Array([10, 20]);
    gemm(false, false, 1, 2, 2, new Float32Array([1, 2]), new Float32Array([1, 2, 3, 4]), c, true);
    expect(Array.from(c)).toEqual([10 + 7, 20 + 10]);
  });

  it('overwrites NaN garbage in C when not accumulating', () => {
    const c = new Float32Array([Number.NaN, Number.NaN]);
    gemm(false, false, 1, 2, 2, new Float32Array([1, 2]), new Float32Array([1, 2, 3, 4]), c, false);
    expect(Array.from(c)).toEqual([7, 10]);
  });

  it('leaves C beyond m×n untouched', () => {
    const c = new Float32Array([9, 9, 9]);
    gemm(false, false, 1, 2, 1, new Float32Array([2]), new Float32Array([1, 2]), c, false);
    expect(Array.from(c)).toEqual([2, 4, 9]);
  });

  it('writes zeros for k = 0', () => {
    const c = new Float32Array([5, 5]);
    gemm(false, false, 1, 2, 0, new Float32Array(0), new Float32Array(0), c, false);
    expect(Array.from(c)).toEqual([0, 0]);
  });

  it('propagates NaN from A', () => {
    const c = new Float32Array(2);
    gemm(false, false, 1, 2, 2, new Float32Array([Number.NaN, 1]), new Float32Array([1, 2, 3, 4]), c, false);
    expect(Array.from(c)).toEqual([Number.NaN, Number.NaN]);
  });

  it.each([
    [2, 3, 4, 7, 12, 6, 'A holds 7 values, needs 2×4 = 8'],
    [2, 3, 4, 8, 11, 6, 'B holds 11 values, needs 4×3 = 12'],
    [2, 3, 4, 8, 12, 5, 'C holds 5 values, needs 2×3 = 6'],
    [-1, 3, 4, 8, 12, 6, 'm must be a whole number >= 0, got -1'],
    [2, 1.5, 4, 8, 12, 6, 'n must be a whole number >= 0, got 1.5'],
    [2, 3, Number.NaN, 8, 12, 6, 'k must be a whole number >= 0, got NaN'],
  ])('rejects m=%s n=%s k=%s with |A|=%s |B|=%s |C|=%s: "%s"', (m, n, k, na, nb, nc, message) => {
    const call = () => gemm(false, false, m, n, k, new Float32Array(na), new Float32Array(nb), new Float32Array(nc), false);
    expect(call).toThrow(RangeError);
    expect(call).toThrow(message);
  });
});

describe.each(KERNELS.slice(1).flatMap(([name, gemm]) => TRANSPOSES.map(([ta, tb]) => [name, ta, tb, gemm] as const)))(
  '%s matches gemmReference (transA=%s, transB=%s)',
  (_name, transA, transB, gemm) => {
    it.each(SHAPES)('m=%i n=%i k=%i, dense and sparse inputs, with and without accumulate', (m, n, k) => {
      const errors = {
        dense: worstRelativeError(gemm, transA, transB, m, n, k, false, false),
        denseAccumulate: worstRelativeError(gemm, transA, transB, m, n, k, false, true),
        sparse: worstRelativeError(gemm, transA, transB, m, n, k, true, false),
        sparseAccumulate: worstRelativeError(gemm, transA, transB, m, n, k, true, true),
      };
      expect(Math.max(...Object.values(errors)), JSON.stringify(errors)).toBeLessThanOrEqual(1e-5);
    });
  },
);

it('gemmFast gives the same result when called again after a larger k (scratch reuse)', () => {
  const rng = new Rng(5);
  const a = randomFloats(rng, 3 * 17, -1, 1, 0.5);
  const b = randomFloats(rng, 17 * 4);
  const first = new Float32Array(12);
  gemmFast(false, false, 3, 4, 17, a, b, first, false);
  const big = randomFloats(rng, 2000);
  gemmFast(false, false, 1, 1, 2000, big, big, new Float32Array(1), false);
  const again = new Float32Array(12);
  gemmFast(false, false, 3, 4, 17, a, b, again, false);
  expect(Array.from(again)).toEqual(Array.from(first));
});

it('gemmWasm runs the relaxed-SIMD build on Node 20 and later', () => {
  expect(WASM_KERNEL).toBe('relaxed-simd');
});

it('gemmWasm grows its memory for larger operands and keeps the results right afterwards', () => {
  const gemm = createGemmWasm('simd');
  const rng = new Rng(9);
  const run = (m: number, n: number, k: number) => {
    const a = randomFloats(rng, m * k);
    const b = randomFloats(rng, k * n);
    const got = new Float32Array(m * n);
    const want = new Float32Array(m * n);
    gemm(false, false, m, n, k, a, b, got, false);
    gemmReference(false, false, m, n, k, a, b, want, false);
    let worst = 0;
    for (let i = 0; i < m * n; i++) worst = Math.max(worst, Math.abs(got[i] - want[i]));
    return worst;
  };
  expect(run(3, 5, 7)).toBeLessThan(1e-5);
  expect(run(300, 257, 300)).toBeLessThan(1e-3); // ~1.3 MB: several pages beyond the first
  expect(run(3, 5, 7)).toBeLessThan(1e-5);
});

describe.each([
  ['relaxed-simd', createGemmWasm('relaxed-simd'), createGemmWasm('relaxed-simd', true)],
  ['simd', createGemmWasm('simd'), createGemmWasm('simd', true)],
] as const)('gemmWasmSkipZeros (%s build)', (_build, dense, skip) => {
  // Shapes around the 32-column panels and 4-wide groups; zero fractions on both sides of the dense switch (0.6).
  const CASES = [1, 3, 17, 33, 64, 129].flatMap((m) => [1, 10, 31, 32, 33, 128].flatMap((n) => [1, 5, 64, 130].map((k) => [m, n, k])));
  it.each([false, true])('gives gemmWasm’s exact values on finite inputs with zeros (transA=%s)', (transA) => {
    const rng = new Rng(transA ? 2 : 1);
    let mismatches = 0;
    for (const [m, n, k] of CASES) {
      for (const zeros of [0, 0.5, 0.8, 0.97, 1]) {
        const a = randomFloats(rng, m * k, -1, 1, zeros);
        const b = randomFloats(rng, k * n);
        for (const accumulate of [false, true]) {
          const want = randomFloats(rng, m * n);
          const got = want.slice();
          dense(transA, false, m, n, k, a, b, want, accumulate);
          skip(transA, false, m, n, k, a, b, got, accumulate);
          for (let i = 0; i < m * n; i++) if (got[i] !== want[i]) mismatches++;
        }
      }
    }
    expect(mismatches).toBe(0);
  });

  it('leaves out 0·Inf instead of giving NaN (as gemmFast)', () => {
    const c = new Float32Array(2);
    skip(false, false, 1, 2, 2, new Float32Array([0, 2]), new Float32Array([Number.POSITIVE_INFINITY, 1, 3, 4]), c, false);
    expect(Array.from(c)).toEqual([6, 8]);
  });
});
