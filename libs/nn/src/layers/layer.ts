import type { Rng } from '../rng.js';
import type { InitScheme } from './weight-init.js';

/** The shape of one sample, outermost first: `[features]`, or `[channels, height, width]` for images. */
export type Shape = readonly number[];

/** Floats in one sample of this shape. */
export function shapeSize(shape: Shape): number {
  return shape.reduce((n, d) => n * d, 1);
}

/**
 * One layer of a model: the contract every layer keeps (dense, ReLU, conv2d, maxpool2d, flatten), so that Model runs
 * any sequence of them with the fused softmax cross-entropy on top.
 *
 * Shapes. inputShape and outputShape describe one sample. A batch is `batch` samples one after another, each
 * row-major: x holds batch·shapeSize(inputShape) floats, y batch·shapeSize(outputShape). A layer is built for one
 * input shape and rejects, in its constructor, one it cannot take, with a ConfigError quoting it and saying how to
 * fix the model.
 *
 * Parameters. The layer owns parameterCount floats of the model's one parameter Float32Array and as many of its one
 * gradient Float32Array. Right after building the layers, the model calls bind once with subarray views of exactly
 * parameterCount floats each, layer after layer, so the model's layout is the layers' own layouts one after the other.
 * The layer keeps these views (never a copy) and lays its tensors out inside them (dense: w (in×out), then b).
 * initialize(rng, scheme) draws the initial values from the one seeded Rng the model passes to every layer in
 * order; a layer without parameters draws nothing, so the values of the layers after it do not depend on it.
 *
 * Forward and backward over a batch. forward(x, batch) returns y. backward(x, dy, batch, inputGradient, replace)
 * comes after the forward of the same batch, with the same x, and dy, the gradient of the loss with respect to y: it
 * adds (+=) the gradient of its parameters into its gradient views (the model zeroes them between steps), or, when
 * replace is true, writes it there (=), giving the bits that adding into zeros gives (dense skips copying its zeros
 * into the GEMM), and returns dx, the gradient with respect to x, or null when inputGradient is false (the first
 * layer: no one needs it, and dense saves a GEMM).
 *
 * Buffers. y and dx are the layer's own buffers, sized for the largest batch so far and then reused: no allocation
 * per step once the batch size is reached (batchBuffer). They may be longer than the batch needs (values past it
 * mean nothing) and stay valid until the layer's next forward (y) or backward (dx).
 *
 * In place. An inPlace layer (ReLU, where buildLayers allows it) returns x itself as y and dy itself as dx,
 * overwriting them. buildLayers allows it only where x is the output buffer of the layer before: never the model's
 * input, which belongs to the caller, nor the output of another in-place layer. Hence the one rule for backward: it
 * reads x, dy and what the layer keeps itself, never its own y, which the next layer may have overwritten in place.
 */
export interface Layer {
  readonly inputShape: Shape;
  readonly outputShape: Shape;
  readonly parameterCount: number;
  readonly inPlace: boolean;
  /** Takes the layer's views of the model's parameters and gradients (parameterCount floats each). */
  bind(params: Float32Array, grads: Float32Array): void;
  /** Initial parameter values drawn from rng (weights as `scheme` says). */
  initialize(rng: Rng, scheme: InitScheme): void;
  /** x (batch, ...inputShape) → y (batch, ...outputShape). */
  forward(x: Float32Array, batch: number): Float32Array;
  /** dy (batch, ...outputShape), x as given to forward → dx (batch, ...inputShape) or null; parameter gradients += (= when replace). */
  backward(x: Float32Array, dy: Float32Array, batch: number, inputGradient: boolean, replace?: boolean): Float32Array | null;
}

/** Zero floats: what a layer's views and buffers are before bind and before the first batch. */
export const EMPTY: Float32Array = new Float32Array(0);

/** `buffer` when it holds n floats, else a new Float32Array(n): how activation buffers grow with the batch. */
export function batchBuffer(buffer: Float32Array, n: number): Float32Array {
  return buffer.length >= n ? buffer : new Float32Array(n);
}
