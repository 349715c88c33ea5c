import { describe, expect, it } from 'vitest';
import { ConfigError } from '../config-error.js';
import { conv2dReference } from '../kernels/conv2d-reference.js';
import { gemmReference } from '../kernels/gemm-reference.js';
import { maxPool2dReference } from '../kernels/maxpool2d-reference.js';
import { buildLayers } from './build-layers.js';
import { DenseLayer } from './dense.js';
import type { Layer } from './layer.js';
import type { LayerSpec } from './layer-spec.js';
import { ReluLayer } from './relu.js';

const kernels = { gemm: gemmReference, conv2d: conv2dReference, maxpool2d: maxPool2dReference };
const summary = (layers: Layer[]) =>
  layers.map((l) => [
    l instanceof DenseLayer ? 'dense' : l instanceof ReluLayer ? 'relu' : '?',
    l.outputShape,
    l.parameterCount,
    l.inPlace,
  ]);

describe('buildLayers', () => {
  it('builds each layer for the output shape of the one before', () => {
    const layers: LayerSpec[] = [{ kind: 'dense', units: 5 }, { kind: 'relu' }, { kind: 'dense', units: 2 }];
    const built = buildLayers({ input: [3], layers }, kernels);
    expect(summary(built)).toEqual([
      ['dense', [5], 20, false],
      ['relu', [5], 0, true],
      ['dense', [2], 12, false],
    ]);
    expect(built.map((l) => l.inputShape)).toEqual([[3], [5], [5]]);
  });

  it('never puts a ReLU in place on the model input (the caller owns it) nor on the output of another in-place layer', () => {
    const layers: LayerSpec[] = [{ kind: 'relu' }, { kind: 'relu' }, { kind: 'relu' }, { kind: 'dense', units: 2 }, { kind: 'relu' }];
    expect(buildLayers({ input: [3], layers }, kernels).map((l) => l.inPlace)).toEqual([false, true, false, false, true]);
  });

  it('passes the shape of image samples through layers that keep it, and lets a dense layer reject it', () => {
    expect(buildLayers({ input: [1, 28, 28], layers: [{ kind: 'relu' }] }, kernels)[0].outputShape).toEqual([1, 28, 28]);
    const dense = () => buildLayers({ input: [1, 28, 28], layers: [{ kind: 'relu' }, { kind: 'dense', units: 10 }] }, kernels);
    expect(dense).toThrow(ConfigError);
    expect(dense).toThrow('got [1, 28, 28]');
  });

  it('builds convolution, pooling and flatten layers with their shapes, a flatten counting as in place', () => {
    const layers: LayerSpec[] = [
      { kind: 'conv2d', k: 3, filters: 4, padding: 'valid' },
      { kind: 'relu' },
      { kind: 'maxpool2d' },
      { kind: 'conv2d', k: 3, filters: 2, padding: 'same' },
      { kind: 'flatten' },
      { kind: 'relu' },
      { kind: 'dense', units: 3 },
    ];
    const built = buildLayers({ input: [2, 9, 8], layers }, kernels);
    expect(built.map((l) => [l.outputShape, l.parameterCount, l.inPlace])).toEqual([
      [[4, 7, 6], 4 * 2 * 9 + 4, false],
      [[4, 7, 6], 0, true],
      [[4, 3, 3], 0, false],
      [[2, 3, 3], 2 * 4 * 9 + 2, false],
      [[18], 0, true],
      [[18], 0, false], // after an in-place flatten: never in place on a buffer that is not the layer before's own
      [[3], 18 * 3 + 3, false],
    ]);
  });

  it('gives the dense layers the kernels it is given', () => {
    let calls = 0;
    const counting = {
      ...kernels,
      gemm: (...args: Parameters<typeof gemmReference>) => {
        calls++;
        gemmReference(...args);
      },
    };
    const [dense] = buildLayers({ input: [2], layers: [{ kind: 'dense', units: 2 }] }, counting);
    dense.bind(new Float32Array(6), new Float32Array(6));
    dense.forward(new Float32Array(2), 1);
    expect(calls).toBe(1);
  });
});
