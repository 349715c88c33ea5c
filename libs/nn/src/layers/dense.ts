import { ConfigError } from '../config-error.js';
import type { Gemm } from '../kernels/gemm.js';
import type { Rng } from '../rng.js';
import { batchBuffer, EMPTY, type Layer, type Shape } from './layer.js';
import { initWeights, type InitScheme } from './weight-init.js';
import { WeightsAndBias } from './weights-and-bias.js';

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
  for (let i = 0; i < batch; i++) out.set(b, i * outDim);
  gemm(false, false, batch, outDim, inDim, x, w, out, true);
}

/**
 * Dense layer backward, accumulating (+=) into the gradients: dw += xᵀ·dout, db += Σ_rows dout, and
 * dx = dout·wᵀ (overwritten; pass null when x needs no gradient, as for the input layer). With replace, dw and db
 * are written instead (=), with the bits += gives on zeros: db sums from 0 as before, and dw is the GEMM's sum
 * itself, which is never -0 (every kernel starts its sums at +0, and x + (±0) = x for x ≠ -0), so 0 + sum = sum.
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
  replace = false,
): void {
  gemm(true, false, inDim, outDim, batch, x, dout, dw, !replace);
  if (replace) db.fill(0, 0, outDim);
  for (let i = 0; i < batch; i++) {
    const o = i * outDim;
    for (let j = 0; j < outDim; j++) db[j] += dout[o + j];
  }
  if (dx !== null) gemm(false, true, batch, inDim, outDim, dout, w, dx, false);
}

/** One dense layer's views into the model's parameter and gradient buffers. */
export interface DenseParams {
  inDim: number;
  outDim: number;
  w: Float32Array; // (inDim, outDim)
  b: Float32Array; // (outDim)
  dw: Float32Array; // (inDim, outDim)
  db: Float32Array; // (outDim)
}

/**
 * A dense layer as a Layer: [inDim] → [units], its parameters w (inDim×units) then b (units) in its views (set by
 * bind); weights from initWeights (fan in inDim, fan out units), biases 0.
 */
export class DenseLayer extends WeightsAndBias implements Layer, DenseParams {
  readonly inputShape: Shape;
  readonly outputShape: Shape;
  readonly parameterCount: number;
  readonly inPlace = false;
  readonly inDim: number;
  readonly outDim: number;
  private y = EMPTY;
  private dx = EMPTY;

  constructor(
    inputShape: Shape,
    units: number,
    private readonly gemm: Gemm,
  ) {
    super();
    if (inputShape.length !== 1) {
      throw new ConfigError(`a dense layer takes flat samples [features], got [${inputShape.join(', ')}] (flatten them first)`);
    }
    if (!Number.isSafeInteger(units) || units < 1) throw new ConfigError(`a dense layer needs a whole number of units >= 1, got ${units}`);
    this.inDim = inputShape[0];
    this.outDim = units;
    this.inputShape = [this.inDim];
    this.outputShape = [units];
    this.parameterCount = this.inDim * units + units;
  }

  bind(params: Float32Array, grads: Float32Array): void {
    this.bindViews(params, grads, this.inDim * this.outDim);
  }

  initialize(rng: Rng, scheme: InitScheme): void {
    initWeights(this.w, rng, scheme, this.inDim, this.outDim);
    this.b.fill(0);
  }

  // x (batch, inDim) → y (batch, outDim)
  forward(x: Float32Array, batch: number): Float32Array {
    this.y = batchBuffer(this.y, batch * this.outDim);
    denseForward(this.gemm, this.y, x, this.w, this.b, batch, this.inDim, this.outDim);
    return this.y;
  }

  // dy (batch, outDim), x (batch, inDim) → dx (batch, inDim) or null; dw, db += (= when replace)
  backward(x: Float32Array, dy: Float32Array, batch: number, inputGradient: boolean, replace = false): Float32Array | null {
    const dx = inputGradient ? (this.dx = batchBuffer(this.dx, batch * this.inDim)) : null;
    denseBackward(this.gemm, dx, this.dw, this.db, dy, x, this.w, batch, this.inDim, this.outDim, replace);
    return dx;
  }
}
