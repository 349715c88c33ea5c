import type { Shape } from './layer.js';

/**
 * One layer of an architecture, as data: what buildLayers turns into a Layer. It names only what is its own; its
 * input shape is the output shape of the layer before (or the model's input).
 */
export type LayerSpec =
  | { kind: 'dense'; units: number }
  | { kind: 'relu' }
  | { kind: 'conv2d'; k: number; filters: number; padding: 'valid' | 'same' }
  | { kind: 'maxpool2d' }
  | { kind: 'flatten' };

/**
 * A model as data, whatever spec it was parsed from: the shape of one input sample and the layers in order. The
 * softmax cross-entropy is fused on top of the last layer, whose output is [classes].
 */
export interface Architecture {
  input: Shape;
  layers: readonly LayerSpec[];
}
