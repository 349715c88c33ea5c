import { ConfigError } from '../config-error.js';
import { conv2dOutputSize, type Conv2dKernel, type Conv2dPadding, type Conv2dShape } from '../kernels/conv2d.js';
import type { Rng } from '../rng.js';
import { batchBuffer, EMPTY, type Layer, type Shape } from './layer.js';
import { initWeights, type InitScheme } from './weight-init.js';
import { WeightsAndBias } from './weights-and-bias.js';

/**
 * A 2-D convolution as a Layer: (inC, height, width) → (filters, outH, outW) per sample, stride 1, 'valid' or
 * 'same' padding. Its parameters, in the model's one buffer: w (filters, inC, k, k), then b (filters), as PyTorch
 * lays out Conv2d.weight and Conv2d.bias. He/Xavier fans: inC·k·k in, filters·k·k out.
 */
export class Conv2dLayer extends WeightsAndBias implements Layer {
  readonly inputShape: Shape;
  readonly outputShape: Shape;
  readonly parameterCount: number;
  readonly inPlace = false;
  private y = EMPTY;
  private dx = EMPTY;
  /** The kernels' shape, its batch set at each call (one object, not one per call). */
  private readonly shape: { -readonly [K in keyof Conv2dShape]: Conv2dShape[K] };
  private readonly perSampleOut: number;
  private readonly perSampleIn: number;

  constructor(
    inputShape: Shape,
    readonly k: number,
    readonly filters: number,
    readonly padding: Conv2dPadding,
    private readonly kernel: Conv2dKernel,
  ) {
    super();
    if (inputShape.length !== 3) {
      throw new ConfigError(`a convolution takes images [channels, height, width], got [${inputShape.join(', ')}]`);
    }
    const [inC, height, width] = inputShape;
    if (padding === 'valid' && (k > height || k > width)) {
      throw new ConfigError(
        `a ${k}×${k} convolution does not fit a ${height}×${width} image (use a smaller kernel, 'same' padding or less pooling)`,
      );
    }
    this.shape = { batch: 0, inC, height, width, outC: filters, k, padding };
    const { outH, outW } = conv2dOutputSize(this.shape);
    this.inputShape = [inC, height, width];
    this.outputShape = [filters, outH, outW];
    this.perSampleIn = inC * height * width;
    this.perSampleOut = filters * outH * outW;
    this.parameterCount = filters * inC * k * k + filters;
  }

  bind(params: Float32Array, grads: Float32Array): void {
    this.bindViews(params, grads, this.parameterCount - this.filters);
  }

  initialize(rng: Rng, scheme: InitScheme): void {
    const area = this.k * this.k;
    initWeights(this.w, rng, scheme, this.shape.inC * area, this.filters * area);
    this.b.fill(0);
  }

  // x (batch, inC, height, width) → y (batch, filters, outH, outW)
  forward(x: Float32Array, batch: number): Float32Array {
    this.y = batchBuffer(this.y, batch * this.perSampleOut);
    this.shape.batch = batch;
    this.kernel.forward(this.y, x, this.w, this.b, this.shape);
    return this.y;
  }

  // dy (batch, filters, outH, outW), x → dx (batch, inC, height, width) or null; dw, db += (= when replace)
  backward(x: Float32Array, dy: Float32Array, batch: number, inputGradient: boolean, replace = false): Float32Array | null {
    const dx = inputGradient ? (this.dx = batchBuffer(this.dx, batch * this.perSampleIn)) : null;
    this.shape.batch = batch;
    if (replace) {
      // The kernels add into dw and db: start them from zeros.
      this.dw.fill(0);
      this.db.fill(0);
    }
    this.kernel.backward(dx, this.dw, this.db, dy, x, this.w, this.shape);
    return dx;
  }
}
