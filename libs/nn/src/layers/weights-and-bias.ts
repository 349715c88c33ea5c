import { EMPTY } from './layer.js';

/**
 * The parameters of a layer with weights and a bias (dense, conv2d): in its share of the model's buffers, w first
 * (weightCount floats), then b; dw and db lie the same way in the gradients. Views, never copies.
 */
export class WeightsAndBias {
  w = EMPTY;
  b = EMPTY;
  dw = EMPTY;
  db = EMPTY;

  /** Points w, b, dw, db into the layer's views of the model's parameters and gradients. */
  bindViews(params: Float32Array, grads: Float32Array, weightCount: number): void {
    this.w = params.subarray(0, weightCount);
    this.b = params.subarray(weightCount);
    this.dw = grads.subarray(0, weightCount);
    this.db = grads.subarray(weightCount);
  }
}
