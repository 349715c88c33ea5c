import { ConfigError } from './config-error.js';
import type { Conv2dKernel } from './kernels/conv2d.js';
import { conv2dWasm } from './kernels/conv2d-wasm.js';
import type { Gemm } from './kernels/gemm.js';
import { gemmWasmSkipZeros } from './kernels/gemm-wasm.js';
import type { MaxPool2dKernel } from './kernels/maxpool2d.js';
import { maxPool2dWasm } from './kernels/maxpool2d-wasm.js';
import { buildLayers, type LayerKernels } from './layers/build-layers.js';
import { batchBuffer, EMPTY, shapeSize, type Layer } from './layers/layer.js';
import { argmaxRows, softmaxCrossEntropy, type BatchStats } from './layers/softmax-cross-entropy.js';
import { INIT_SCHEMES, type InitScheme } from './layers/weight-init.js';
import { architectureOf, formatModelSpec, MAX_PARAMETERS, parseModelSpec, type ModelSpec } from './model-spec.js';
import { Rng } from './rng.js';

export interface ModelOptions {
  seed?: number;
  init?: InitScheme;
  gemm?: Gemm;
  conv2d?: Conv2dKernel;
  maxpool2d?: MaxPool2dKernel;
  /** Where the parameters and gradients live (else new arrays): e.g. an optimizer's kernel memory. */
  storage?: ModelStorage;
}

/**
 * Two arrays of the model's parameter count for its parameters and gradients, e.g. in the memory of the optimizer's
 * WebAssembly kernel (Optimizer.modelStorage), so that the update and adding up gradients copy neither.
 */
export interface ModelStorage {
  params: Float32Array;
  grads: Float32Array;
}

// WebAssembly SIMD leaving out zeros of A (inputs, ReLU outputs); gemmWasm is the plain one, gemmFast and
// gemmReference the TypeScript kernels.
const DEFAULT_GEMM = gemmWasmSkipZeros;
// WebAssembly SIMD; conv2dReference is the plain-loops one.
const DEFAULT_CONV2D = conv2dWasm;
const DEFAULT_MAXPOOL2D = maxPool2dWasm;

/**
 * A model: a sequence of layers (see layers/layer.ts) built from its spec's architecture, with a fused softmax
 * cross-entropy on top; an MLP is dense, ReLU, dense, …, dense. All parameters live in one Float32Array and all
 * gradients in another, laid out layer after layer ([w0 (in0×out0), b0 (out0), w1, b1, …] for an MLP); each layer
 * holds subarray views into both.
 */
export class Model {
  readonly spec: ModelSpec;
  readonly params: Float32Array;
  readonly grads: Float32Array;
  readonly layers: readonly Layer[];
  readonly gemm: Gemm;
  /** Floats per input sample. */
  readonly inputSize: number;
  readonly classes: number;
  // The input each layer got in the last forward (for its backward) and the gradient of the loss at the logits.
  private readonly inputs: Float32Array[];
  private dlogits = EMPTY;

  constructor(spec: ModelSpec | string, options: ModelOptions = {}) {
    this.spec = typeof spec === 'string' ? parseModelSpec(spec) : spec;
    this.gemm = options.gemm ?? DEFAULT_GEMM;
    const architecture = architectureOf(this.spec);
    const kernels = { gemm: this.gemm, conv2d: options.conv2d ?? DEFAULT_CONV2D, maxpool2d: options.maxpool2d ?? DEFAULT_MAXPOOL2D };
    this.layers = layersOf(this.spec, kernels);
    const count = parameterSum(this.layers);
    checkParameterCount(this.spec, count);
    const { storage } = options;
    if (storage !== undefined && (storage.params.length !== count || storage.grads.length !== count)) {
      throw new RangeError(
        `model ${formatModelSpec(this.spec)} has ${count} parameters; its storage holds ${storage.params.length} parameters and ${storage.grads.length} gradients`,
      );
    }
    this.params = storage?.params ?? new Float32Array(count);
    this.grads = storage?.grads ?? new Float32Array(count);
    this.grads.fill(0);
    let o = 0;
    for (const layer of this.layers) {
      const end = o + layer.parameterCount;
      layer.bind(this.params.subarray(o, end), this.grads.subarray(o, end));
      o = end;
    }
    this.inputSize = shapeSize(architecture.input);
    this.classes = shapeSize(this.layers[this.layers.length - 1].outputShape);
    this.inputs = this.layers.map(() => EMPTY);
    this.initialize(options.seed ?? 0, options.init ?? 'he');
  }

  /** Number of parameters of the model of this spec, or of the MLP with these layer sizes, without allocating them. */
  static parameterCount(spec: ModelSpec | readonly number[]): number {
    const modelSpec: ModelSpec = 'kind' in spec ? spec : { kind: 'mlp', sizes: [...spec] };
    return parameterSum(layersOf(modelSpec, { gemm: DEFAULT_GEMM, conv2d: DEFAULT_CONV2D, maxpool2d: DEFAULT_MAXPOOL2D }));
  }

  /** Floats of the layers' outputs for one sample: what a batch's activations take per sample (times 4 bytes). */
  get activationFloats(): number {
    return this.layers.reduce((n, layer) => n + shapeSize(layer.outputShape), 0);
  }

  get name(): string {
    return formatModelSpec(this.spec);
  }

  /** Parameters drawn from Rng(seed), layer after layer: weights as the scheme says (see initWeights), biases 0. */
  initialize(seed: number, scheme: InitScheme): void {
    if (!INIT_SCHEMES.includes(scheme)) throw new ConfigError(`unknown init "${scheme}" (use he or xavier)`);
    const rng = new Rng(seed);
    for (const layer of this.layers) layer.initialize(rng, scheme);
  }

  zeroGrads(): void {
    this.grads.fill(0);
  }

  /** Forward pass over x (batch, inputSize); returns the logits (batch, classes), a view valid until the next call. */
  forward(x: Float32Array, batch: number): Float32Array {
    if (!Number.isInteger(batch) || batch < 1) throw new RangeError(`batch must be a whole number >= 1, got ${batch}`);
    let y = x;
    for (let l = 0; l < this.layers.length; l++) {
      this.inputs[l] = y;
      y = this.layers[l].forward(y, batch);
    }
    return y;
  }

  /**
   * Forward and backward over a batch: adds the gradient of the summed loss to `grads` (call zeroGrads first
   * for a fresh sum) and returns the loss sum and the number of correct predictions.
   */
  forwardBackward(x: Float32Array, labels: ArrayLike<number>, batch: number): BatchStats {
    return this.backprop(x, labels, batch, false);
  }

  /**
   * `grads` = the gradient of the batch's summed loss: the bits of zeroGrads then forwardBackward, without the pass
   * that zeroes (each layer writes its parameter gradients instead of adding them). Returns as forwardBackward.
   */
  gradientOf(x: Float32Array, labels: ArrayLike<number>, batch: number): BatchStats {
    return this.backprop(x, labels, batch, true);
  }

  /** Forward, loss and backward; each layer adds its parameter gradients (replace: writes them). */
  private backprop(x: Float32Array, labels: ArrayLike<number>, batch: number, replace: boolean): BatchStats {
    this.checkLabels(labels, batch);
    const logits = this.forward(x, batch);
    this.dlogits = batchBuffer(this.dlogits, batch * this.classes);
    const stats = softmaxCrossEntropy(this.dlogits, logits, labels, batch, this.classes);
    let dy = this.dlogits;
    for (let l = this.layers.length - 1; l >= 0; l--) {
      const dx = this.layers[l].backward(this.inputs[l], dy, batch, l > 0, replace); // no input gradient for the first layer
      if (dx !== null) dy = dx;
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
}

function parameterSum(layers: readonly Layer[]): number {
  return layers.reduce((n, layer) => n + layer.parameterCount, 0);
}

/**
 * Parses a model spec and checks, without allocating the model, that its layers fit together (every layer takes
 * the shape the one before gives) and that it stays within MAX_PARAMETERS: what a command checks before any work.
 */
export function checkModelSpec(spec: string): ModelSpec {
  const parsed = parseModelSpec(spec);
  checkParameterCount(parsed, Model.parameterCount(parsed));
  return parsed;
}

function checkParameterCount(spec: ModelSpec, count: number): void {
  if (count > MAX_PARAMETERS) {
    throw new ConfigError(
      `model ${formatModelSpec(spec)} has ${count} parameters, more than the ${MAX_PARAMETERS} gradq allows (use fewer or smaller layers)`,
      { about: 'model' },
    );
  }
}

/** The spec's layers; a layer that does not fit the shape before it is reported with the spec it is in. */
function layersOf(spec: ModelSpec, kernels: LayerKernels): Layer[] {
  try {
    return buildLayers(architectureOf(spec), kernels);
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    throw new ConfigError(`model spec "${formatModelSpec(spec)}": ${e.message}`, { about: 'model' });
  }
}
