import { describe, expect, it } from 'vitest';
import { ConfigError } from '../config-error.js';
import type { Gemm } from '../kernels/gemm.js';
import { gemmFast } from '../kernels/gemm-fast.js';
import { gemmReference } from '../kernels/gemm-reference.js';
import { gemmWasm, gemmWasmSkipZeros } from '../kernels/gemm-wasm.js';
import { Rng } from '../rng.js';
import { dotLoss, firstMismatch, numericGradient, randomFloats } from '../testing/numeric.js';
import { DenseLayer, denseBackward, denseForward } from './dense.js';

// Finite differences on float32 values: a step of 1e-2 and |analytic - numeric| <= 1e-3 + 1e-2·|numeric|.
const EPS = 1e-2;
const ABS = 1e-3;
const REL = 1e-2;

describe.each([
  ['gemmFast', gemmFast],
  ['gemmReference', gemmReference],
] as [string, Gemm][])('dense layer with %s', (_name, gemm) => {
  it('computes x·w + b for a 2×3 input and 3×2 weights by hand', () => {
    const out = new Float32Array(4);
    const x = new Float32Array([1, 2, 3, 0, -1, 2]);
    const w = new Float32Array([1, 0, 0, 1, 1, 1]);
    denseForward(gemm, out, x, w, new Float32Array([0.5, -0.5]), 2, 3, 2);
    expect(Array.from(out)).toEqual([4.5, 4.5, 2.5, 0.5]);
  });

  it('backward: dx, dw and db match central differences of Σ r·out', () => {
    const [batch, inDim, outDim] = [5, 7, 4];
    const rng = new Rng(11);
    const x = randomFloats(rng, batch * inDim, -1, 1, 0.3);
    const w = randomFloats(rng, inDim * outDim);
    const b = randomFloats(rng, outDim);
    const r = randomFloats(rng, batch * outDim); // dL/dout of the loss L = Σ r·out
    const out = new Float32Array(batch * outDim);
    const loss = () => {
      denseForward(gemm, out, x, w, b, batch, inDim, outDim);
      return dotLoss(r, out);
    };
    const dx = new Float32Array(batch * inDim);
    const dw = new Float32Array(inDim * outDim);
    const db = new Float32Array(outDim);
    denseBackward(gemm, dx, dw, db, r, x, w, batch, inDim, outDim);
    expect(firstMismatch(dx, numericGradient(loss, x, EPS), ABS, REL)).toBeNull();
    expect(firstMismatch(dw, numericGradient(loss, w, EPS), ABS, REL)).toBeNull();
    expect(firstMismatch(db, numericGradient(loss, b, EPS), ABS, REL)).toBeNull();
  });

  it('backward adds to dw and db and overwrites dx', () => {
    const [batch, inDim, outDim] = [3, 4, 2];
    const rng = new Rng(12);
    const x = randomFloats(rng, batch * inDim);
    const w = randomFloats(rng, inDim * outDim);
    const dout = randomFloats(rng, batch * outDim);
    const fresh = { dx: new Float32Array(batch * inDim), dw: new Float32Array(inDim * outDim), db: new Float32Array(outDim) };
    denseBackward(gemm, fresh.dx, fresh.dw, fresh.db, dout, x, w, batch, inDim, outDim);
    const dx = new Float32Array(batch * inDim).fill(123);
    const dw = new Float32Array(inDim * outDim).fill(1);
    const db = new Float32Array(outDim).fill(-2);
    denseBackward(gemm, dx, dw, db, dout, x, w, batch, inDim, outDim);
    expect(firstMismatch(dx, fresh.dx, 0, 0)).toBeNull();
    expect(
      firstMismatch(
        dw,
        Array.from(fresh.dw, (v) => v + 1),
        1e-6,
        1e-6,
      ),
    ).toBeNull();
    expect(
      firstMismatch(
        db,
        Array.from(fresh.db, (v) => v - 2),
        1e-6,
        1e-6,
      ),
    ).toBeNull();
  });

  it('backward with dx = null still fills dw and db', () => {
    const dw = new Float32Array(2);
    const db = new Float32Array(1);
    denseBackward(gemm, null, dw, db, new Float32Array([1, 2]), new Float32Array([3, 4]), new Float32Array([1, 1]), 2, 1, 1);
    // dw = xᵀ·dout = 3·1 + 4·2 for a 1×1 weight; the second value lies outside the 1×1 weight.
    expect(Array.from(dw)).toEqual([11, 0]);
    expect(Array.from(db)).toEqual([3]);
  });
});

/** A dense layer 4 → 3 bound to views at offset 2 of a params and a grads buffer, as a model would bind it. */
function boundLayer(gemm: Gemm = gemmReference) {
  const layer = new DenseLayer([4], 3, gemm);
  const params = new Float32Array(2 + layer.parameterCount + 1);
  const grads = new Float32Array(params.length);
  layer.bind(params.subarray(2, 2 + layer.parameterCount), grads.subarray(2, 2 + layer.parameterCount));
  return { layer, params, grads };
}

describe('DenseLayer', () => {
  it('maps [in] to [units] with in·units weights and units biases', () => {
    const layer = new DenseLayer([4], 3, gemmReference);
    expect([layer.inputShape, layer.outputShape, layer.parameterCount, layer.inPlace]).toEqual([[4], [3], 15, false]);
  });

  it('lays w (in×units) then b out in the views it is bound to', () => {
    const { layer, params, grads } = boundLayer();
    expect([layer.w.byteOffset / 4, layer.w.length, layer.b.byteOffset / 4, layer.b.length]).toEqual([2, 12, 14, 3]);
    expect([layer.dw.byteOffset / 4, layer.dw.length, layer.db.byteOffset / 4, layer.db.length]).toEqual([2, 12, 14, 3]);
    expect([layer.w.buffer, layer.dw.buffer]).toEqual([params.buffer, grads.buffer]);
    params[14 + 1] = 5;
    expect(layer.b[1]).toBe(5);
  });

  it('initializes he weights as N(0, 2/in) draws of the Rng in index order, biases 0, nothing outside its views', () => {
    const { layer, params } = boundLayer();
    params.fill(7);
    layer.initialize(new Rng(3), 'he');
    const rng = new Rng(3);
    const expected = Array.from({ length: 12 }, () => Math.fround(rng.nextNormal() * Math.sqrt(2 / 4)));
    expect(Array.from(layer.w)).toEqual(expected);
    expect(Array.from(layer.b)).toEqual([0, 0, 0]);
    expect([params[0], params[1], params[17]]).toEqual([7, 7, 7]);
  });

  it('initializes xavier weights with σ = √(2/(in+units))', () => {
    const { layer } = boundLayer();
    layer.initialize(new Rng(4), 'xavier');
    const rng = new Rng(4);
    expect(Array.from(layer.w)).toEqual(Array.from({ length: 12 }, () => Math.fround(rng.nextNormal() * Math.sqrt(2 / 7))));
  });

  it.each([
    ['gemmFast', gemmFast],
    ['gemmReference', gemmReference],
  ] as [string, Gemm][])(
    'gives denseForward and denseBackward bit for bit with %s, accumulating into its gradient views',
    (_name, gemm) => {
      const { layer, params, grads } = boundLayer(gemm);
      const rng = new Rng(13);
      params.set(randomFloats(rng, params.length));
      grads.set(randomFloats(rng, grads.length));
      const batch = 5;
      const x = randomFloats(rng, batch * 4, -1, 1, 0.3);
      const dy = randomFloats(rng, batch * 3);
      const want = { y: new Float32Array(batch * 3), dx: new Float32Array(batch * 4), dw: layer.dw.slice(), db: layer.db.slice() };
      denseForward(gemm, want.y, x, layer.w, layer.b, batch, 4, 3);
      denseBackward(gemm, want.dx, want.dw, want.db, dy, x, layer.w, batch, 4, 3);
      expect(Array.from(layer.forward(x, batch))).toEqual(Array.from(want.y));
      const dx = layer.backward(x, dy, batch, true);
      expect(Array.from(dx ?? [])).toEqual(Array.from(want.dx));
      expect(Array.from(layer.dw)).toEqual(Array.from(want.dw));
      expect(Array.from(layer.db)).toEqual(Array.from(want.db));
    },
  );

  it('returns no input gradient when none is asked for, and still adds dw and db', () => {
    const { layer } = boundLayer();
    layer.w.fill(1);
    expect(layer.backward(new Float32Array(4).fill(1), new Float32Array([1, 2, 3]), 1, false)).toBeNull();
    expect(Array.from(layer.db)).toEqual([1, 2, 3]);
    expect(Array.from(layer.dw.subarray(0, 3))).toEqual([1, 2, 3]);
  });

  it('with replace writes dw and db (the bits of adding into zeros) instead of adding to what they held', () => {
    for (const gemm of [gemmReference, gemmWasm, gemmWasmSkipZeros]) {
      const { layer } = boundLayer(gemm);
      const rng = new Rng(12);
      layer.w.set(randomFloats(rng, layer.w.length));
      const x = randomFloats(rng, 5 * 4, 0, 1, 0.4);
      const dy = randomFloats(rng, 5 * 3);
      layer.dw.fill(0);
      layer.db.fill(0);
      layer.backward(x, dy, 5, true);
      const want = [...layer.dw, ...layer.db];
      layer.dw.fill(3);
      layer.db.fill(-2);
      layer.backward(x, dy, 5, true, true);
      expect([...layer.dw, ...layer.db].map((v) => (Object.is(v, -0) ? '-0' : v))).toEqual(want.map((v) => (Object.is(v, -0) ? '-0' : v)));
    }
  });

  it('reuses its output and input-gradient buffers while the batch does not grow', () => {
    const { layer } = boundLayer();
    const x = new Float32Array(6 * 4);
    const dy = new Float32Array(6 * 3);
    const y = layer.forward(x, 6);
    const dx = layer.backward(x, dy, 6, true);
    expect([y.length, dx?.length]).toEqual([18, 24]);
    expect(layer.forward(x, 2)).toBe(y);
    expect(layer.backward(x, dy, 2, true)).toBe(dx);
    expect(layer.forward(new Float32Array(7 * 4), 7)).not.toBe(y);
  });

  it('rejects samples that are not flat, and a unit count that is not a whole number >= 1, with a ConfigError quoting them', () => {
    expect(() => new DenseLayer([1, 28, 28], 10, gemmReference)).toThrow(ConfigError);
    expect(() => new DenseLayer([1, 28, 28], 10, gemmReference)).toThrow('[1, 28, 28] (flatten them first)');
    expect(() => new DenseLayer([4], 0, gemmReference)).toThrow('units >= 1, got 0');
    expect(() => new DenseLayer([4], 2.5, gemmReference)).toThrow('units >= 1, got 2.5');
  });
});
