import { describe, expect, it } from 'vitest';
import { ConfigError } from './config-error.js';
import { conv2dReference } from './kernels/conv2d-reference.js';
import { conv2dWasm } from './kernels/conv2d-wasm.js';
import { gemmReference } from './kernels/gemm-reference.js';
import { maxPool2dReference } from './kernels/maxpool2d-reference.js';
import { maxPool2dWasm } from './kernels/maxpool2d-wasm.js';
import { Conv2dLayer } from './layers/conv2d.js';
import { MaxPool2dLayer } from './layers/maxpool2d.js';
import { checkModelSpec, Model } from './model.js';
import { MAX_PARAMETERS } from './model-spec.js';
import { Rng } from './rng.js';
import { firstMismatch, numericGradient, randomFloats } from './testing/numeric.js';

const TINY = 'cnn:2x6x5/conv3x3same/relu/pool2/conv2x4/relu/dense3';

/** A model with random parameters and a batch of inputs, all from `seed`. */
function randomSetup(spec: string, batch: number, seed: number, conv2d = conv2dReference) {
  const model = new Model(spec, { gemm: gemmReference, conv2d, maxpool2d: maxPool2dReference });
  const rng = new Rng(seed);
  model.params.set(randomFloats(rng, model.params.length, -0.8, 0.8));
  const x = randomFloats(rng, batch * model.inputSize, -1, 1, 0.2);
  const labels = Array.from({ length: batch }, () => rng.nextInt(model.classes));
  return { model, x, labels };
}

describe('a convolutional Model', () => {
  it('has the layers, shapes and parameter counts of PyTorch’s lenet and convnet', () => {
    const lenet = new Model('lenet');
    expect(lenet.layers.map((l) => l.outputShape)).toEqual([
      [16, 24, 24],
      [16, 24, 24],
      [16, 12, 12],
      [32, 8, 8],
      [32, 8, 8],
      [32, 4, 4],
      [512],
      [128],
      [128],
      [10],
    ]);
    expect(lenet.params.length).toBe(16 * 25 + 16 + 32 * 16 * 25 + 32 + 512 * 128 + 128 + 128 * 10 + 10);
    expect(Model.parameterCount(checkModelSpec('convnet'))).toBe(32 * 9 + 32 + 64 * 32 * 9 + 64 + 9216 * 128 + 128 + 128 * 10 + 10);
    expect([lenet.inputSize, lenet.classes]).toEqual([784, 10]);
  });

  it('lays each convolution out as w (filters, inC, k, k) then b (filters) in the one parameter buffer', () => {
    const model = new Model(TINY);
    const conv = model.layers.filter((l) => l instanceof Conv2dLayer);
    expect(conv.map((l) => [l.w.byteOffset / 4, l.w.length, l.b.byteOffset / 4, l.b.length])).toEqual([
      [0, 3 * 2 * 3 * 3, 54, 3],
      [57, 4 * 3 * 2 * 2, 57 + 48, 4],
    ]);
    expect(conv.every((l) => l.w.buffer === model.params.buffer && l.dw.buffer === model.grads.buffer)).toBe(true);
  });

  it.each([
    ['conv2dReference', conv2dReference],
    ['conv2dWasm', conv2dWasm],
  ] as const)('matches central differences of the summed loss for every parameter, with %s', (_name, conv2d) => {
    const batch = 3;
    const { model, x, labels } = randomSetup(TINY, batch, 11, conv2d);
    model.zeroGrads();
    model.forwardBackward(x, labels, batch);
    const numeric = numericGradient(() => model.evaluate(x, labels, batch).lossSum, model.params, 1e-2);
    expect(firstMismatch(model.grads, numeric, 2e-3, 2e-2)).toBeNull();
    expect(model.grads.some((g) => Math.abs(g) > 0.05)).toBe(true); // the check is not vacuous
  });

  it('adds the gradient of a batch of 5 equal to the sum over its single-sample batches (odd sizes, both kernels)', () => {
    for (const conv2d of [conv2dReference, conv2dWasm]) {
      const { model, x, labels } = randomSetup(TINY, 5, 3, conv2d);
      model.zeroGrads();
      model.forwardBackward(x, labels, 5);
      const whole = model.grads.slice();
      model.zeroGrads();
      for (let i = 0; i < 5; i++)
        model.forwardBackward(x.subarray(i * model.inputSize, (i + 1) * model.inputSize), labels.slice(i, i + 1), 1);
      expect(firstMismatch(model.grads, whole, 1e-5, 1e-4)).toBeNull();
    }
  });

  it('gradientOf gives the bits of zeroGrads then forwardBackward, whatever grads held before (both kernels)', () => {
    for (const conv2d of [conv2dReference, conv2dWasm]) {
      const { model, x, labels } = randomSetup(TINY, 5, 8, conv2d);
      model.zeroGrads();
      const want = model.forwardBackward(x, labels, 5);
      const wantGrads = model.grads.slice();
      model.grads.fill(0.25); // what an earlier batch left
      expect(model.gradientOf(x, labels, 5)).toEqual(want);
      expect(new Uint32Array(model.grads.buffer, model.grads.byteOffset, model.grads.length)).toEqual(new Uint32Array(wantGrads.buffer));
    }
  });

  it('gives the same logits with the WebAssembly and the reference convolution (float32 rounding only)', () => {
    const a = randomSetup(TINY, 17, 5, conv2dReference);
    const b = randomSetup(TINY, 17, 5, conv2dWasm);
    expect(firstMismatch(b.model.forward(b.x, 17).slice(0, 17 * 3), a.model.forward(a.x, 17).slice(0, 17 * 3), 1e-5, 1e-4)).toBeNull();
  });

  it('initialises convolutions with He fan-in inC·k·k and zero biases, from the seed', () => {
    const model = new Model('lenet', { seed: 4 });
    const conv2 = model.layers.filter((l) => l instanceof Conv2dLayer)[1];
    let sq = 0;
    for (const v of conv2.w) sq += v * v;
    expect(Math.sqrt(sq / conv2.w.length)).toBeCloseTo(Math.sqrt(2 / (16 * 25)), 2);
    expect(conv2.b.every((v) => v === 0)).toBe(true);
    expect(new Model('lenet', { seed: 4 }).params).toEqual(model.params);
  });

  it('refuses layers that do not fit the shape before them, and models above MAX_PARAMETERS', () => {
    expect(() => checkModelSpec('cnn:1x4x4/conv5x2/dense2')).toThrow(ConfigError);
    expect(() => checkModelSpec('cnn:1x4x4/conv5x2/dense2')).toThrow(/5×5 convolution does not fit a 4×4 image/);
    expect(() => checkModelSpec('cnn:1x3x3/pool2/pool2/dense2')).toThrow(/needs an image of at least 2×2, got 1×1/);
    expect(() => checkModelSpec('mlp:784-65536-10')).toThrow(`more than the ${MAX_PARAMETERS} gradq allows`);
    expect(() => new Model('mlp:784-65536-10')).toThrow(ConfigError);
  });
});

describe('MaxPool2dLayer', () => {
  it('takes the largest of each 2×2 window (odd sizes round down) and sends the gradient back to it alone', () => {
    const layer = new MaxPool2dLayer([1, 3, 5], maxPool2dWasm);
    // prettier-ignore
    const x = Float32Array.from([
      1, 5, 2, 0, 9,
      3, 4, 8, 7, 9,
      6, 6, 6, 6, 6,
    ]);
    expect(layer.outputShape).toEqual([1, 1, 2]);
    expect(Array.from(layer.forward(x, 1).subarray(0, 2))).toEqual([5, 8]);
    const dx = layer.backward(x, Float32Array.from([10, 20]), 1, true);
    expect(Array.from((dx ?? new Float32Array(0)).subarray(0, 15))).toEqual([0, 10, 0, 0, 0, 0, 0, 20, 0, 0, 0, 0, 0, 0, 0]);
  });

  it('lets a NaN win its window, as PyTorch does', () => {
    const layer = new MaxPool2dLayer([1, 2, 2], maxPool2dReference);
    expect(layer.forward(Float32Array.from([1, Number.NaN, 3, 2]), 1)[0]).toBeNaN();
  });
});
