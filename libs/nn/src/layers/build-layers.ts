import type { Gemm } from '../kernels/gemm.js';
import { DenseLayer } from './dense.js';
import type { Layer, Shape } from './layer.js';
import type { Architecture, LayerSpec } from './layer-spec.js';
import { ReluLayer } from './relu.js';

/** The kernels the layers run on: the model's choice. */
export interface LayerKernels {
  gemm: Gemm;
}

/**
 * The layers of an architecture, in order, each built for the output shape of the one before. A layer that can
 * work in place (ReLU) does so when the layer before it exists and is not in place itself (see Layer).
 */
export function buildLayers(architecture: Architecture, kernels: LayerKernels): Layer[] {
  const layers: Layer[] = [];
  let shape = architecture.input;
  for (const spec of architecture.layers) {
    const previous = layers.at(-1);
    const layer = buildLayer(spec, shape, previous !== undefined && !previous.inPlace, kernels);
    layers.push(layer);
    shape = layer.outputShape;
  }
  return layers;
}

function buildLayer(spec: LayerSpec, input: Shape, inPlaceAllowed: boolean, kernels: LayerKernels): Layer {
  switch (spec.kind) {
    case 'dense':
      return new DenseLayer(input, spec.units, kernels.gemm);
    case 'relu':
      return new ReluLayer(input, inPlaceAllowed);
  }
}
