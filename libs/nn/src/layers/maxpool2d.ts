import { ConfigError } from '../config-error.js';
import type { MaxPool2dKernel, Pool2dShape } from '../kernels/maxpool2d.js';
import { batchBuffer, EMPTY, type Layer, type Shape } from './layer.js';

/**
 * 2×2 max pooling, stride 2, as a Layer: (channels, height, width) → (channels, ⌊height/2⌋, ⌊width/2⌋) per sample, no
 * parameters (kernels/maxpool2d.ts says which input wins a window). Forward records the winners (argmax) for the
 * backward, which sends each output's gradient to its winner alone.
 */
export class MaxPool2dLayer implements Layer {
  readonly inputShape: Shape;
  readonly outputShape: Shape;
  readonly parameterCount = 0;
  readonly inPlace = false;
  private readonly perSampleIn: number;
  private readonly perSampleOut: number;
  /** The kernels' shape, its batch set at each call (one object, not one per call). */
  private readonly shape: { -readonly [K in keyof Pool2dShape]: Pool2dShape[K] };
  private y = EMPTY;
  private dx = EMPTY;
  private argmax = new Int32Array(0);

  constructor(
    inputShape: Shape,
    private readonly kernel: MaxPool2dKernel,
  ) {
    if (inputShape.length !== 3)
      throw new ConfigError(`max pooling takes images [channels, height, width], got [${inputShape.join(', ')}]`);
    const [channels, height, width] = inputShape;
    if (height < 2 || width < 2)
      throw new ConfigError(`2×2 max pooling needs an image of at least 2×2, got ${height}×${width} (pool less)`);
    this.inputShape = [channels, height, width];
    this.outputShape = [channels, height >> 1, width >> 1];
    this.perSampleIn = channels * height * width;
    this.perSampleOut = channels * (height >> 1) * (width >> 1);
    this.shape = { batch: 0, channels, height, width };
  }

  bind(): void {
    // no parameters
  }

  initialize(): void {
    // no parameters: draws nothing
  }

  // x (batch, channels, height, width) → y (batch, channels, height/2, width/2)
  forward(x: Float32Array, batch: number): Float32Array {
    const n = batch * this.perSampleOut;
    this.y = batchBuffer(this.y, n);
    if (this.argmax.length < n) this.argmax = new Int32Array(n);
    this.shape.batch = batch;
    this.kernel.forward(this.y, this.argmax, x, this.shape);
    return this.y;
  }

  // dy (batch, channels, height/2, width/2) → dx (batch, channels, height, width) or null
  backward(_x: Float32Array, dy: Float32Array, batch: number, inputGradient: boolean): Float32Array | null {
    if (!inputGradient) return null;
    this.dx = batchBuffer(this.dx, batch * this.perSampleIn);
    this.shape.batch = batch;
    this.kernel.backward(this.dx, dy, this.argmax, this.shape);
    return this.dx;
  }
}
