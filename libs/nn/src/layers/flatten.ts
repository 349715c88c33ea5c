import { shapeSize, type Layer, type Shape } from './layer.js';

/**
 * Flatten as a Layer: (channels, height, width) → (channels·height·width) per sample, the same floats in the same
 * (row-major) order, so that forward returns x itself and backward dy itself. That makes it an in-place layer
 * (inPlace), so buildLayers never puts a ReLU after it in place on a buffer it does not own.
 */
export class FlattenLayer implements Layer {
  readonly outputShape: Shape;
  readonly parameterCount = 0;
  readonly inPlace = true;

  constructor(readonly inputShape: Shape) {
    this.outputShape = [shapeSize(inputShape)];
  }

  bind(): void {
    // no parameters
  }

  initialize(): void {
    // no parameters: draws nothing
  }

  // x (batch, ...inputShape) → y (batch, features): the same floats
  forward(x: Float32Array): Float32Array {
    return x;
  }

  // dy (batch, features) → dx (batch, ...inputShape): the same floats, or null
  backward(_x: Float32Array, dy: Float32Array, _batch: number, inputGradient: boolean): Float32Array | null {
    return inputGradient ? dy : null;
  }
}
