import { describe, expect, it } from 'vitest';
import { Rng } from '../rng.js';
import { dotLoss, firstMismatch, numericGradient, randomFloats } from '../testing/numeric.js';
import { ReluLayer, reluBackward, reluBackwardReference, reluForward, reluForwardReference } from './relu.js';
import { reluBackwardWasm, reluForwardWasm } from '../kernels/vec-wasm.js';

describe('reluForward', () => {
  it('sets negative values to 0 and keeps the others', () => {
    const out = new Float32Array(4);
    reluForward(out, new Float32Array([-2, -0.5, 0, 3]), 4);
    expect(Array.from(out)).toEqual([0, 0, 0, 3]);
  });

  it('propagates NaN', () => {
    const out = new Float32Array(1);
    reluForward(out, new Float32Array([Number.NaN]), 1);
    expect(out[0]).toBeNaN();
  });

  it('works in place and only on the first n values', () => {
    const x = new Float32Array([-1, 2, -3]);
    reluForward(x, x, 2);
    expect(Array.from(x)).toEqual([0, 2, -3]);
  });
});

describe.each([
  ['the dispatch', reluForward, reluBackward],
  ['the reference loops', reluForwardReference, reluBackwardReference],
  ['WebAssembly', reluForwardWasm, reluBackwardWasm],
] as const)('ReLU without branches: %s', (_name, reluForward, reluBackward) => {
  // Every kind of float32: signed zeros, subnormals, the largest values, infinities, NaN (both signs), random values.
  const special = [0, -0, 1e-45, -1e-45, 1.1754942e-38, -1.1754942e-38, 3.4028235e38, -3.4028235e38, Infinity, -Infinity, Number.NaN];
  // More than 2 × 65,536 values: the WebAssembly passes copy them a group at a time.
  const values = Float32Array.from([...special, ...randomFloats(new Rng(5), 140_001, -1, 1, 0.1)]);
  new Uint32Array(values.buffer)[special.length] = 0xffc00001; // a NaN with the sign bit set
  const bits = (x: Float32Array) => Array.from(new Uint32Array(x.buffer, x.byteOffset, x.length));

  it.each([values.length, 65_537, 17, 5])('on the first %i values gives the bits of the reference, other values left alone', (n) => {
    const out = new Float32Array(values.length).fill(9);
    reluForward(out, values, n);
    const want = new Float32Array(values.length).fill(9);
    reluForwardReference(want, values, n);
    expect(bits(out)).toEqual(bits(want));
    const dx = new Float32Array(values.length).fill(9);
    const dout = Float32Array.from(values).reverse();
    reluBackward(dx, dout, values, n);
    const wantDx = new Float32Array(values.length).fill(9);
    reluBackwardReference(wantDx, dout, values, n);
    expect(bits(dx)).toEqual(bits(wantDx));
  });

  it('reluForward gives the bits of x < 0 ? 0 : x, also in place and on a view at an offset', () => {
    const want = values.map((v) => (v < 0 ? 0 : v));
    const out = new Float32Array(values.length);
    reluForward(out, values, values.length);
    expect(bits(out)).toEqual(bits(want));
    const padded = new Float32Array(values.length + 3);
    padded.set(values, 3);
    const view = padded.subarray(3);
    reluForward(view, view, values.length);
    expect(bits(view)).toEqual(bits(want));
  });

  it('reluBackward gives the bits of mask > 0 ? dout : 0, also in place', () => {
    const dout = Float32Array.from(values).reverse();
    const want = dout.map((d, i) => (values[i] > 0 ? d : 0));
    const dx = new Float32Array(values.length);
    reluBackward(dx, dout, values, values.length);
    expect(bits(dx)).toEqual(bits(want));
    reluBackward(dout, dout, values, values.length);
    expect(bits(dout)).toEqual(bits(want));
  });
});

describe('reluBackward', () => {
  it('passes the gradient where the output is positive and zeroes it elsewhere (also at 0)', () => {
    const dx = new Float32Array(3);
    reluBackward(dx, new Float32Array([5, 6, 7]), new Float32Array([1, 0, 0.5]), 3);
    expect(Array.from(dx)).toEqual([5, 0, 7]);
  });

  it('works in place', () => {
    const d = new Float32Array([5, 6]);
    reluBackward(d, d, new Float32Array([0, 2]), 2);
    expect(Array.from(d)).toEqual([0, 6]);
  });

  it('matches central differences of Σ r·relu(x) away from the kink', () => {
    const eps = 1e-2;
    const rng = new Rng(21);
    // Values in ±[0.05, 1]: never within 2·eps of 0.
    const x = Float32Array.from(randomFloats(rng, 40, 0.05, 1), (v, i) => (i % 3 === 0 ? -v : v));
    const r = randomFloats(rng, 40);
    const out = new Float32Array(40);
    const loss = () => {
      reluForward(out, x, 40);
      return dotLoss(r, out);
    };
    loss();
    const dx = new Float32Array(40);
    reluBackward(dx, r, out, 40);
    expect(firstMismatch(dx, numericGradient(loss, x, eps), 1e-4, 1e-3)).toBeNull();
  });
});

describe('ReluLayer', () => {
  const x0 = [-2, 3, 0, -0.5, 1, Number.NaN, -0, 4]; // two samples of shape [2, 2]
  const dy0 = [1, 2, 3, 4, 5, 6, 7, 8];
  const y0 = [0, 3, 0, 0, 1, Number.NaN, -0, 4];
  const dx0 = [0, 2, 0, 0, 5, 0, 0, 8];

  it('keeps the shape of any sample and owns no parameters', () => {
    const layer = new ReluLayer([2, 2], false);
    expect([layer.inputShape, layer.outputShape, layer.parameterCount]).toEqual([[2, 2], [2, 2], 0]);
  });

  it('in place, overwrites x with y and dy with dx and returns them', () => {
    const layer = new ReluLayer([2, 2], true);
    const x = new Float32Array(x0);
    const dy = new Float32Array(dy0);
    expect(layer.forward(x, 2)).toBe(x);
    expect(Array.from(x)).toEqual(y0);
    expect(layer.backward(x, dy, 2, true)).toBe(dy);
    expect(Array.from(dy)).toEqual(dx0);
  });

  it('not in place, leaves x and dy as they are and gives the same y and dx in its own buffers', () => {
    const layer = new ReluLayer([2, 2], false);
    const x = new Float32Array(x0);
    const dy = new Float32Array(dy0);
    const y = layer.forward(x, 2);
    const dx = layer.backward(x, dy, 2, true);
    expect([Array.from(y), Array.from(dx ?? [])]).toEqual([y0, dx0]);
    expect([Array.from(x), Array.from(dy)]).toEqual([x0, dy0]);
    expect(layer.forward(x, 1)).toBe(y);
    expect(layer.backward(x, dy, 1, true)).toBe(dx);
  });

  it('returns no input gradient when none is asked for', () => {
    const dy = new Float32Array(dy0);
    expect(new ReluLayer([2, 2], true).backward(new Float32Array(x0), dy, 2, false)).toBeNull();
    expect(Array.from(dy)).toEqual(dy0);
  });
});
