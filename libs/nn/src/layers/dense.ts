import type { Gemm } from '../kernels/gemm.js';

/**
 * Dense layer forward: out = x·w + b.
 * x is (batch, inDim), w is (inDim, outDim), b is (outDim), out is (batch, outDim).
 */
export function denseForward(
  gemm: Gemm,
  out: Float32Array,
  x: Float32Array,
  w: Float32Array,
  b: Float32Array,
  batch: number,
  inDim: number,
  outDim: number,
): void {
  // prettier-ignore
  for (let i = 0; i < batch; i++) out.set(b, i * outDim);
  gemm(false, false, batch, outDim, inDim, x, w, out, true);
}

/**
 * Dense layer backward, accumulating (+=) into the gradients: dw += xᵀ·dout, db += Σ_rows dout, and
 * dx = dout·wᵀ (overwritten; pass null when x needs no gradient, as for the input layer).
 * dout is (batch, outDim), x is (batch, inDim), w is (inDim, outDim), dx is (batch, inDim).
 */
export function denseBackward(
  gemm: Gemm,
  dx: Float32Array | null,
  dw: Float32Array,
  db: Float32Array,
  dout: Float32Array,
  x: Float32Array,
  w: Float32Array,
  batch: number,
  inDim: number,
  outDim: number,
): void {
  // prettier-ignore
  gemm(true, false, inDim, outDim, batch, x, dout, dw, true);
  for (let i = 0; i < batch; i++) {
    const o = i * outDim;
    for (let j = 0; j < outDim; j++) db[j] += dout[o + j];
  }
  if (dx !== null) gemm(false, true, batch, inDim, outDim, dout, w, dx, false);
}
