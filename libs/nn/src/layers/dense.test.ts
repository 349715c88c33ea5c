import { describe, expect, it } from 'vitest';
import { denseBackward, denseForward } from './dense.js';
import type { Gemm } from '../kernels/gemm.js';
import { gemmFast } from '../kernels/gemm-fast.js';
import { gemmReference } from '../kernels/gemm-reference.js';
import { Rng } from '../rng.js';
import { dotLoss, firstMismatch, numericGradient, randomFloats } from '../testing/numeric.js';

// Finite differences on float32 values: a step of 1e-2 and |analytic - numeric| <= 1e-3 + 1e-2·|numeric|.
const EPS = 1e-2;
const ABS = 1e-3;
const REL = 1e-2;

describe.each([
  ['gemmFast', gemmFast],
  ['gemmReference', gemmReference],
] as [string, Gemm][])('dense layer with %s', (_name, gemm) => {
  it('computes x·w + b for a 2×3 input and 3×2 weights by hand', () => {
    const out = new Float32Array(4);
    const x = new Float32Array([1, 2, 3, 0, -1, 2]);
    const w = new Float32Array([1, 0, 0, 1, 1, 1]);
    denseForward(gemm, out, x, w, new Float32Array([0.5, -0.5]), 2, 3, 2);
    expect(Array.from(out)).toEqual([4.5, 4.5, 2.5, 0.5]);
  });

  it('backward: dx, dw and db match central differences of Σ r·out', () => {
    const [batch, inDim, outDim] = [5, 7, 4];
    const rng = new Rng(11);
    const x = randomFloats(rng, batch * inDim, -1, 1, 0.3);
    const w = randomFloats(rng, inDim * outDim);
    const b = randomFloats(rng, outDim);
    const r = randomFloats(rng, batch * outDim); // dL/dout of the loss L = Σ r·out
    const out = new Float32Array(batch * outDim);
    const loss = () => {
      denseForward(gemm, out, x, w, b, batch, inDim, outDim);
      return dotLoss(r, out);
    };
    const dx = new Float32Array(batch * inDim);
    const dw = new Float32Array(inDim * outDim);
    const db = new Float32Array(outDim);
    denseBackward(gemm, dx, dw, db, r, x, w, batch, inDim, outDim);
    expect(firstMismatch(dx, numericGradient(loss, x, EPS), ABS, REL)).toBeNull();
    expect(firstMismatch(dw, numericGradient(loss, w, EPS), ABS, REL)).toBeNull();
    expect(firstMismatch(db, numericGradient(loss, b, EPS), ABS, REL)).toBeNull();
  });

  it('backward adds to dw and db and overwrites dx', () => {
    const [batch, inDim, outDim] = [3, 4, 2];
    const rng = new Rng(12);
    const x = randomFloats(rng, batch * inDim);
    const w = randomFloats(rng, inDim * outDim);
    const dout = randomFloats(rng, batch * outDim);
    const fresh = { dx: new Float32Array(batch * inDim), dw: new Float32Array(inDim * outDim), db: new Float32Array(outDim) };
    denseBackward(gemm, fresh.dx, fresh.dw, fresh.db, dout, x, w, batch, inDim, outDim);
    const dx = new Float32Array(batch * inDim).fill(123);
    const dw = new Float32Array(inDim * outDim).fill(1);
    const db = new Float32Array(outDim).fill(-2);
    denseBackward(gemm, dx, dw, db, dout, x, w, batch, inDim, outDim);
    expect(firstMismatch(dx, fresh.dx, 0, 0)).toBeNull();
    expect(
      firstMismatch(
        dw,
        Array.from(fresh.dw, (v) => v + 1),
        1e-6,
        1e-6,
      ),
    ).toBeNull();
    expect(
      firstMismatch(
        db,
        Array.from(fresh.db, (v) => v - 2),
        1e-6,
        1e-6,
      ),
    ).toBeNull();
  });

  it('backward with dx = null still fills dw and db', () => {
    const dw = new Float32Array(2);
    const db = new Float32Array(1);
    denseBackward(gemm, null, dw, db, new Float32Array([1, 2]), new Float32Array([3, 4]), new Float32Array([1, 1]), 2, 1, 1);
    // dw = xᵀ·dout = 3·1 + 4·2 for a 1×1 weight; the second value lies outside the 1×1 weight.
    expect(Array.from(dw)).toEqual([11, 0]);
    expect(Array.from(db)).toEqual([3]);
  });
});
