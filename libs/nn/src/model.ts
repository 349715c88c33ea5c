import { ConfigError } from './config-error.js';
import { denseBackward, denseForward } from './layers/dense.js';
import type { Gemm } from './kernels/gemm.js';
import { gemmWasmSkipZeros } from './kernels/gemm-wasm.js';
import { parseModelSpec, formatModelSpec, type ModelSpec } from './model-spec.js';
import { reluBackward, reluForward } from './layers/relu.js';
import { Rng } from './rng.js';
import { argmaxRows, softmaxCrossEntropy, type BatchStats } from './layers/softmax-cross-entropy.js';

export type InitScheme = 'he' | 'xavier';
export const INIT_SCHEMES: readonly InitScheme[] = ['he', 'xavier'];

/** One dense layer's views into the model's parameter and gradient buffers. */
export interface DenseParams {
  inDim: number;
  outDim: number;
  w: Float32Array; // (inDim, outDim)
  b: Float32Array; // (outDim)
  dw: Float32Array; // (inDim, outDim)
  db: Float32Array; // (outDim)
}

export interface ModelOptions {
  seed?: number;
  init?: InitScheme;
  gemm?: Gemm;
}

/**
 * A multilayer perceptron: dense layers with ReLU between them and a fused softmax cross-entropy on top.
 * All parameters live in one Float32Array and all gradients in another, laid out layer by layer as
 * [w0 (in0×out0), b0 (out0), w1, b1, …]; each layer holds subarray views into both.
 */
export class Model {
  readonly spec: ModelSpec;
  readonly params: Float32Array;
  readonly grads: Float32Array;
  readonly layers: DenseParams[];
  readonly gemm: Gemm;
  // Activations (post-ReLU outputs) and their gradients per layer, sized for `capacity` samples.
  private capacity = 0;
  private acts: Float32Array[] = [];
  private deltas: Float32Array[] = [];

  constructor(spec: ModelSpec | string, options: ModelOptions = {}) {
    this.spec = typeof spec === 'string' ? parseModelSpec(spec) : spec;
    // WebAssembly SIMD leaving out zeros of A (inputs, ReLU outputs); gemmWasm is the plain one, gemmFast and
    // gemmReference the TypeScript kernels.
    this.gemm = options.gemm ?? gemmWasmSkipZeros;
    const sizes = this.spec.sizes;
    const count = Model.parameterCount(sizes);
    this.params = new Float32Array(count);
    this.grads = new Float32Array(count);
    this.layers = [];
    let o = 0;
    for (let l = 0; l + 1 < sizes.length; l++) {
      const inDim = sizes[l];
      const outDim = sizes[l + 1];
      const w = [o, o + inDim * outDim] as const;
      const b = [w[1], w[1] + outDim] as const;
      o = b[1];
      this.layers.push({
        inDim, outDim,
        w: this.params.subarray(...w), b: this.params.subarray(...b),
        dw: this.grads.subarray(...w), db: this.grads.subarray(...b),
      }); // prettier-ignore
    }
    this.initialize(options.seed ?? 0, options.init ?? 'he');
  }

  /** Number of parameters of an MLP with these layer sizes. */
  static parameterCount(sizes: readonly number[]): number {
    let n = 0;
    for (let l = 0; l + 1 < sizes.length; l++) n += sizes[l] * sizes[l + 1] + sizes[l + 1];
    return n;
  }

  get name(): string {
    return formatModelSpec(this.spec);
  }
  get inputSize(): number {
    return this.spec.sizes[0];
  }
  get classes(): number {
    return this.spec.sizes[this.spec.sizes.length - 1];
  }

  /** Weights from N(0, σ²) with σ = √(2/in) (he) or √(2/(in+out)) (xavier), drawn from Rng(seed); biases 0. */
  initialize(seed: number, scheme: InitScheme): void {
    if (!INIT_SCHEMES.includes(scheme)) throw new ConfigError(`unknown init "${scheme}" (use he or xavier)`);
    const rng = new Rng(seed);
    for (const { inDim, outDim, w, b } of this.layers) {
      const std = Math.sqrt(scheme === 'he' ? 2 / inDim : 2 / (inDim + outDim));
      for (let i = 0; i < w.length; i++) w[i] = rng.nextNormal() * std;
      b.fill(0);
    }
  }

  zeroGrads(): void {
    this.grads.fill(0);
  }

  /** Forward pass over x (batch, inputSize); returns the logits (batch, classes), a view valid until the next call. */
  forward(x: Float32Array, batch: number): Float32Array {
    this.reserve(batch);
    let input = x;
    for (let l = 0; l < this.layers.length; l++) {
      const { w, b, inDim, outDim } = this.layers[l];
      const out = this.acts[l];
      denseForward(this.gemm, out, input, w, b, batch, inDim, outDim);
      if (l + 1 < this.layers.length) reluForward(out, out, batch * outDim);
      input = out;
    }
    return this.acts[this.layers.length - 1];
  }

  /**
   * Forward and backward over a batch: adds the gradient of the summed loss to `grads` (call zeroGrads first
   * for a fresh sum) and returns the loss sum and the number of correct predictions.
   */
  forwardBackward(x: Float32Array, labels: ArrayLike<number>, batch: number): BatchStats {
    this.checkLabels(labels, batch);
    const logits = this.forward(x, batch);
    const last = this.layers.length - 1;
    const stats = softmaxCrossEntropy(this.deltas[last], logits, labels, batch, this.classes);
    for (let l = last; l >= 0; l--) {
      const { w, dw, db, inDim, outDim } = this.layers[l];
      const input = l > 0 ? this.acts[l - 1] : x;
      const dx = l > 0 ? this.deltas[l - 1] : null;
      denseBackward(this.gemm, dx, dw, db, this.deltas[l], input, w, batch, inDim, outDim);
      if (dx !== null) reluBackward(dx, dx, input, batch * inDim);
    }
    return stats;
  }

  /** Loss sum and correct count without gradients. */
  evaluate(x: Float32Array, labels: ArrayLike<number>, batch: number): BatchStats {
    this.checkLabels(labels, batch);
    return softmaxCrossEntropy(null, this.forward(x, batch), labels, batch, this.classes);
  }

  /** Predicted class per sample into out. */
  predict(x: Float32Array, batch: number, out: { [i: number]: number }): void {
    argmaxRows(out, this.forward(x, batch), batch, this.classes);
  }

  /** A label outside 0..classes-1 would read past its row of logits and write into the next row's gradient. */
  private checkLabels(labels: ArrayLike<number>, batch: number): void {
    if (labels.length < batch) throw new RangeError(`${labels.length} labels for a batch of ${batch}`);
    const classes = this.classes;
    for (let i = 0; i < batch; i++) {
      const label = labels[i];
      if (!(Number.isInteger(label) && label >= 0 && label < classes)) {
        throw new RangeError(`label ${label} at index ${i} is not a class of 0..${classes - 1}`);
      }
    }
  }

  /** Grows the activation buffers to hold `batch` samples (allocates only when the batch grows). */
  private reserve(batch: number): void {
    if (!Number.isInteger(batch) || batch < 1) throw new RangeError(`batch must be a whole number >= 1, got ${batch}`);
    if (batch <= this.capacity) return;
    this.capacity = batch;
    this.acts = this.layers.map((l) => new Float32Array(batch * l.outDim));
    this.deltas = this.layers.map((l) => new Float32Array(batch * l.outDim));
  }
}
