import { describe, expect, it } from 'vitest';
import { gemmFast } from './kernels/gemm-fast.js';
import { gemmReference } from './kernels/gemm-reference.js';
import { gemmWasm, gemmWasmSkipZeros } from './kernels/gemm-wasm.js';
import { DenseLayer, denseForward } from './layers/dense.js';
import { ReluLayer, reluForward } from './layers/relu.js';
import { Model } from './model.js';
import { parseModelSpec } from './model-spec.js';
import { Rng } from './rng.js';
import { firstMismatch, numericGradient, randomFloats } from './testing/numeric.js';

/** The model's dense layers, in order. */
function denseLayers(model: Model): DenseLayer[] {
  return model.layers.filter((layer) => layer instanceof DenseLayer);
}

/** Hidden pre-activations (before ReLU) of every sample, computed layer by layer from the model's views. */
function hiddenPreActivations(model: Model, x: Float32Array, batch: number): number[] {
  const pre: number[] = [];
  let input = x;
  for (const { w, b, inDim, outDim } of denseLayers(model).slice(0, -1)) {
    const out = new Float32Array(batch * outDim);
    denseForward(gemmReference, out, input, w, b, batch, inDim, outDim);
    pre.push(...out);
    reluForward(out, out, batch * outDim);
    input = out;
  }
  return pre;
}

/** A model with random weights and biases (not the zero-bias init) and a batch of inputs, all from `seed`. */
function randomSetup(spec: string, batch: number, seed: number, gemm = gemmFast) {
  const model = new Model(spec, { gemm });
  const rng = new Rng(seed);
  model.params.set(randomFloats(rng, model.params.length));
  const x = randomFloats(rng, batch * model.inputSize, -1, 1, 0.2);
  const labels = Array.from({ length: batch }, () => rng.nextInt(model.classes));
  return { model, x, labels };
}

describe('Model layout', () => {
  it('counts weights and biases of every layer', () => {
    expect(Model.parameterCount([784, 128, 10])).toBe(784 * 128 + 128 + 128 * 10 + 10);
    expect(new Model('mlp:7-5-4-3').params.length).toBe(7 * 5 + 5 + 5 * 4 + 4 + 4 * 3 + 3);
  });

  it('counts the same from a parsed spec as from its sizes', () => {
    expect(Model.parameterCount(parseModelSpec('mlp:7-5-4-3'))).toBe(7 * 5 + 5 + 5 * 4 + 4 + 4 * 3 + 3);
  });

  it('is the sequence dense, ReLU, dense, ReLU, dense with shapes chained and each ReLU in place on the dense output', () => {
    const model = new Model('mlp:7-5-4-3');
    const kinds = [DenseLayer, ReluLayer, DenseLayer, ReluLayer, DenseLayer];
    expect(model.layers.map((layer, l) => layer instanceof kinds[l])).toEqual([true, true, true, true, true]);
    expect(model.layers.map((layer) => [layer.inputShape, layer.outputShape, layer.parameterCount, layer.inPlace])).toEqual([
      [[7], [5], 40, false],
      [[5], [5], 0, true],
      [[5], [4], 24, false],
      [[4], [4], 0, true],
      [[4], [3], 15, false],
    ]);
  });

  it('lays out w0, b0, w1, b1, … as views into the one params and one grads buffer', () => {
    const model = new Model('mlp:7-5-4-3');
    const offsets: number[][] = [];
    for (const { w, b, dw, db } of denseLayers(model)) {
      for (const v of [w, b]) expect(v.buffer).toBe(model.params.buffer);
      for (const v of [dw, db]) expect(v.buffer).toBe(model.grads.buffer);
      expect([dw.byteOffset, db.byteOffset]).toEqual([w.byteOffset, b.byteOffset]);
      offsets.push([w.byteOffset / 4, w.length, b.byteOffset / 4, b.length]);
    }
    expect(offsets).toEqual([
      [0, 35, 35, 5],
      [40, 20, 60, 4],
      [64, 12, 76, 3],
    ]);
    expect([model.inputSize, model.classes, model.name]).toEqual([7, 3, 'mlp:7-5-4-3']);
  });

  it('sees writes to params through the layer views', () => {
    const model = new Model('mlp:2-3-2');
    model.params.fill(0);
    model.params[2 * 3 + 1] = 5; // b0[1]
    expect(Array.from(denseLayers(model)[0].b)).toEqual([0, 5, 0]);
  });
});

describe('Model initialisation', () => {
  it('is deterministic per seed and differs across seeds', () => {
    const a = new Model('mlp:20-10-3', { seed: 7 }).params;
    expect(Array.from(new Model('mlp:20-10-3', { seed: 7 }).params)).toEqual(Array.from(a));
    expect(firstMismatch(new Model('mlp:20-10-3', { seed: 8 }).params, a, 0, 0)).not.toBeNull();
  });

  it.each([
    ['he', Math.sqrt(2 / 1000)],
    ['xavier', Math.sqrt(2 / 1400)],
  ] as const)('draws %s weights with mean 0 and std %f over a 1000×400 layer, biases 0', (init, std) => {
    const { w, b } = denseLayers(new Model('mlp:1000-400-2', { seed: 3, init }))[0];
    let sum = 0;
    let sq = 0;
    for (const v of w) {
      sum += v;
      sq += v * v;
    }
    const mean = sum / w.length;
    expect(Math.abs(mean)).toBeLessThan((5 * std) / Math.sqrt(w.length));
    expect(Math.sqrt(sq / w.length - mean * mean) / std).toBeCloseTo(1, 2);
    expect(b.every((v) => v === 0)).toBe(true);
  });

  it('rejects an unknown init scheme with its name', () => {
    expect(() => new Model('mlp:2-2', { init: 'lecun' as never })).toThrow(/unknown init "lecun"/);
  });
});

describe.each([
  ['gemmFast', gemmFast],
  ['gemmReference', gemmReference],
  ['gemmWasm', gemmWasm],
] as const)('Model.forwardBackward with %s', (_name, gemm) => {
  it('matches central differences of the summed loss for every parameter of mlp:7-5-4-3', () => {
    const eps = 1e-2;
    const batch = 4;
    const { model, x, labels } = randomSetup('mlp:7-5-4-3', batch, 4, gemm);
    // Guard: no hidden pre-activation within 2·eps of the ReLU kink for this seed.
    expect(Math.min(...hiddenPreActivations(model, x, batch).map(Math.abs))).toBeGreaterThan(2 * eps);
    model.zeroGrads();
    model.forwardBackward(x, labels, batch);
    const numeric = numericGradient(() => model.evaluate(x, labels, batch).lossSum, model.params, eps);
    expect(firstMismatch(model.grads, numeric, 1e-3, 1e-2)).toBeNull();
    expect(model.grads.some((g) => Math.abs(g) > 0.1)).toBe(true); // the check is not vacuous
  });

  it('adds the gradient of a batch of 4 equal to the sum over its 4 single-sample batches', () => {
    const { model, x, labels } = randomSetup('mlp:7-5-4-3', 4, 2, gemm);
    model.zeroGrads();
    const whole = model.forwardBackward(x, labels, 4);
    const batchGrads = model.grads.slice();
    model.zeroGrads();
    let lossSum = 0;
    let correct = 0;
    for (let i = 0; i < 4; i++) {
      const stats = model.forwardBackward(x.subarray(i * 7, (i + 1) * 7), labels.slice(i, i + 1), 1);
      lossSum += stats.lossSum;
      correct += stats.correct;
    }
    expect(firstMismatch(model.grads, batchGrads, 1e-7, 1e-5)).toBeNull();
    expect(whole.lossSum).toBeCloseTo(lossSum, 5);
    expect(whole.correct).toBe(correct);
  });

  it('accumulates: a second call without zeroGrads doubles the gradient', () => {
    const { model, x, labels } = randomSetup('mlp:7-5-4-3', 3, 4, gemm);
    model.zeroGrads();
    model.forwardBackward(x, labels, 3);
    const once = model.grads.slice();
    model.forwardBackward(x, labels, 3);
    expect(
      firstMismatch(
        model.grads,
        Array.from(once, (g) => 2 * g),
        1e-7,
        1e-6,
      ),
    ).toBeNull();
  });
});

describe.each([
  ['gemmFast', gemmFast],
  ['gemmReference', gemmReference],
  ['gemmWasm', gemmWasm],
  ['gemmWasmSkipZeros', gemmWasmSkipZeros],
] as const)('Model.gradientOf with %s', (_name, gemm) => {
  it.each([1, 3, 17, 64])('gives the bits of zeroGrads then forwardBackward, whatever grads held before (batch %i)', (batch) => {
    const { model, x, labels } = randomSetup('mlp:29-17-6-3', batch, batch + 40, gemm);
    x.forEach((v, i) => (x[i] = Math.max(0, v))); // images are >= 0, with exact zeros (skipped by gemmWasmSkipZeros)
    model.zeroGrads();
    const want = model.forwardBackward(x, labels, batch);
    const wantGrads = model.grads.slice();
    model.grads.set(randomFloats(new Rng(batch), model.grads.length)); // what an earlier batch left
    const got = model.gradientOf(x, labels, batch);
    expect(got).toEqual(want);
    expect(new Uint32Array(model.grads.buffer, model.grads.byteOffset, model.grads.length)).toEqual(new Uint32Array(wantGrads.buffer));
    expect(wantGrads.some((g) => g !== 0)).toBe(true); // not vacuous
  });
});

describe('Model', () => {
  it('gives the same loss after the batch shrinks and grows again (activation buffers reused)', () => {
    const { model, x, labels } = randomSetup('mlp:7-5-4-3', 6, 5);
    const first = model.evaluate(x, labels, 6).lossSum;
    model.evaluate(x, labels, 2);
    expect(model.evaluate(x, labels, 6).lossSum).toBe(first);
  });

  it('reuses its buffers: a smaller batch gets the same logits buffer, a larger one a new one', () => {
    const { model, x, labels } = randomSetup('mlp:7-5-4-3', 6, 5);
    model.forwardBackward(x, labels, 6);
    const logits = model.forward(x, 6);
    expect(model.forward(x, 2)).toBe(logits);
    model.forwardBackward(x, labels, 3);
    expect(model.forward(x, 6)).toBe(logits);
    expect(model.forward(new Float32Array(7 * 7), 7)).not.toBe(logits);
  });

  it('predicts the argmax of the logits', () => {
    const { model, x } = randomSetup('mlp:7-5-4-3', 5, 6);
    const logits = model.forward(x, 5).slice(0, 15);
    const predicted = [0, 0, 0, 0, 0];
    model.predict(x, 5, predicted);
    const expected = [0, 1, 2, 3, 4].map((i) => [0, 1, 2].reduce((best, j) => (logits[i * 3 + j] > logits[i * 3 + best] ? j : best), 0));
    expect(predicted).toEqual(expected);
  });

  it.each([0, -1, 1.5])('rejects a batch of %s', (batch) => {
    expect(() => new Model('mlp:2-2').forward(new Float32Array(4), batch)).toThrow(`batch must be a whole number >= 1, got ${batch}`);
  });

  it('rejects fewer labels than samples', () => {
    expect(() => new Model('mlp:2-2').forwardBackward(new Float32Array(4), [0], 2)).toThrow('1 labels for a batch of 2');
  });

  it.each([3, -1, 0.5, Number.NaN])('rejects the label %s of a 3-class model with its value and index', (label) => {
    const model = new Model('mlp:2-3');
    expect(() => model.forwardBackward(new Float32Array(4), [0, label], 2)).toThrow(`label ${label} at index 1`);
    expect(() => model.evaluate(new Float32Array(4), [0, label], 2)).toThrow(`label ${label} at index 1`);
  });
});
