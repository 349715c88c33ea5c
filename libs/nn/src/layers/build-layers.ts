import type { Conv2dKernel } from '../kernels/conv2d.js';
import type { Gemm } from '../kernels/gemm.js';
import type { MaxPool2dKernel } from '../kernels/maxpool2d.js';
import { Conv2dLayer } from './conv2d.js';
import { DenseLayer } from './dense.js';
import { FlattenLayer } from './flatten.js';
import type { Layer, Shape } from './layer.js';
import type { Architecture, LayerSpec } from './layer-spec.js';
import { MaxPool2dLayer } from './maxpool2d.js';
import { ReluLayer } from './relu.js';

/** The kernels the layers run on: the model's choice. */
export interface LayerKernels {
  gemm: Gemm;
  conv2d: Conv2dKernel;
  maxpool2d: MaxPool2dKernel;
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
    case 'conv2d':
      return new Conv2dLayer(input, spec.k, spec.filters, spec.padding, kernels.conv2d);
    case 'maxpool2d':
      return new MaxPool2dLayer(input, kernels.maxpool2d);
    case 'flatten':
      return new FlattenLayer(input);
  }
}
