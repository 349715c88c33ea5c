import { describe, expect, it } from 'vitest';
import { Rng } from '../rng.js';
import { dotLoss, firstMismatch, numericGradient, randomFloats } from '../testing/numeric.js';
import { maxPool2dOutputSize, type MaxPool2dKernel, type Pool2dShape } from './maxpool2d.js';
import { maxPool2dReference } from './maxpool2d-reference.js';
import { maxPool2dWasm } from './maxpool2d-wasm.js';

const KERNELS: [string, MaxPool2dKernel][] = [
  ['maxPool2dReference', maxPool2dReference],
  ['maxPool2dWasm', maxPool2dWasm],
];

const shapeOf = (batch: number, channels: number, height: number, width: number): Pool2dShape => ({ batch, channels, height, width });

function pool(kernel: MaxPool2dKernel, x: Float32Array, s: Pool2dShape) {
  const { outH, outW } = maxPool2dOutputSize(s);
  const n = s.batch * s.channels * outH * outW;
  const out = new Float32Array(n).fill(Number.NaN);
  const argmax = new Int32Array(n).fill(-1);
  kernel.forward(out, argmax, x, s);
  return { out, argmax };
}

describe.each(KERNELS)('%s', (_name, kernel) => {
  it('takes the maximum of each 2×2 window and its index within the plane (odd last row and column unused)', () => {
    // 5×5: windows over rows 0-1 and 2-3, columns 0-1 and 2-3; row 4 and column 4 (99) are left out.
    // prettier-ignore
    const x = new Float32Array([
      1, 2,   3, 9, 99,
      4, 3,   8, 7, 99,
      0, -1,  5, 5, 99,
      -2, -3, 5, 6, 99,
      99, 99, 99, 99, 99,
    ]);
    const { out, argmax } = pool(kernel, x, shapeOf(1, 1, 5, 5));
    expect(Array.from(out)).toEqual([4, 9, 0, 6]);
    expect(Array.from(argmax)).toEqual([5, 3, 10, 18]);
  });

  it('breaks ties by the first of (0,0), (0,1), (1,0), (1,1), and lets NaN win (the last NaN), as PyTorch', () => {
    // Four windows of one 2×8 plane: all equal; equal maxima at (0,1) and (1,0); NaN at (0,1) and (1,1); all -Infinity.
    const inf = Number.NEGATIVE_INFINITY;
    const x = new Float32Array([2, 2, 1, 3, 0, Number.NaN, inf, inf, 2, 2, 3, 0, 7, Number.NaN, inf, inf]);
    const { out, argmax } = pool(kernel, x, shapeOf(1, 1, 2, 8));
    expect(Array.from(out)).toEqual([2, 3, Number.NaN, inf]);
    expect(Array.from(argmax)).toEqual([0, 3, 13, 6]);
  });

  it('backward puts each gradient where its window’s maximum was and 0 everywhere else', () => {
    const x = new Float32Array([1, 2, 3, 9, 99, 4, 3, 8, 7, 99, 0, -1, 5, 5, 99, -2, -3, 5, 6, 99, 99, 99, 99, 99, 99]);
    const s = shapeOf(1, 1, 5, 5);
    const { argmax } = pool(kernel, x, s);
    const dx = new Float32Array(25).fill(Number.NaN);
    kernel.backward(dx, new Float32Array([10, 20, 30, 40]), argmax, s);
    expect(Array.from(dx)).toEqual([0, 0, 0, 20, 0, 10, 0, 0, 0, 0, 30, 0, 0, 0, 0, 0, 0, 0, 40, 0, 0, 0, 0, 0, 0]);
  });

  it.each([
    [shapeOf(1.5, 1, 4, 4), 'batch must be a whole number >= 0, got 1.5'],
    [shapeOf(1, 0, 4, 4), 'channels must be a whole number >= 1, got 0'],
    [shapeOf(1, 1, -4, 4), 'height must be a whole number >= 1, got -4'],
  ])('rejects %o: "%s"', (s, message) => {
    expect(() => kernel.forward(new Float32Array(16), new Int32Array(4), new Float32Array(16), s)).toThrow(message);
  });

  it.each([
    ['x', 15, 4, 4, 'x holds 15 values, needs 1×1×4×4 = 16'],
    ['out', 16, 3, 4, 'out holds 3 values, needs 1×1×2×2 = 4'],
    ['argmax', 16, 4, 3, 'argmax holds 3 values, needs 1×1×2×2 = 4'],
  ])('rejects a short %s: "%s"', (_what, nx, nout, narg, message) => {
    const call = () => kernel.forward(new Float32Array(nout), new Int32Array(narg), new Float32Array(nx), shapeOf(1, 1, 4, 4));
    expect(call).toThrow(RangeError);
    expect(call).toThrow(message);
  });
});

// Odd sizes, one channel, batch 1, 3 and 17; widths whose outputs leave 0-3 past the groups of four.
const SHAPES = [
  shapeOf(1, 1, 7, 9),
  shapeOf(3, 2, 8, 8),
  shapeOf(17, 3, 5, 11),
  shapeOf(3, 16, 24, 24),
  shapeOf(2, 5, 13, 15),
  shapeOf(1, 1, 1, 6),
];

describe('maxPool2dWasm gives maxPool2dReference’s exact values', () => {
  it.each(SHAPES)('%o, with ties, NaN, ±0 and ±Infinity', (s) => {
    const rng = new Rng(s.batch * 1000 + s.height * 10 + s.width);
    const n = s.batch * s.channels * s.height * s.width;
    // Few distinct values, so windows hold ties; some NaN, zeros of both signs and infinities.
    const specials = [Number.NaN, 0, -0, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY];
    const x = new Float32Array(n).map(() =>
      rng.nextFloat() < 0.1 ? specials[Math.floor(rng.nextFloat() * 5)] : Math.floor(rng.nextFloat() * 4),
    );
    const got = pool(maxPool2dWasm, x, s);
    const want = pool(maxPool2dReference, x, s);
    expect(Array.from(got.argmax)).toEqual(Array.from(want.argmax));
    expect(Array.from(got.out)).toEqual(Array.from(want.out));
    const dout = randomFloats(rng, got.out.length);
    const dxGot = new Float32Array(n).fill(Number.NaN);
    const dxWant = new Float32Array(n).fill(Number.NaN);
    maxPool2dWasm.backward(dxGot, dout, got.argmax, s);
    maxPool2dReference.backward(dxWant, dout, want.argmax, s);
    expect(Array.from(dxGot)).toEqual(Array.from(dxWant));
  });

  it('grows its memory for a larger shape and keeps the results right afterwards', () => {
    const rng = new Rng(4);
    for (const s of [shapeOf(1, 1, 4, 4), shapeOf(8, 32, 64, 64), shapeOf(1, 1, 4, 4)]) {
      const x = randomFloats(rng, s.batch * s.channels * s.height * s.width);
      const [got, want] = [pool(maxPool2dWasm, x, s), pool(maxPool2dReference, x, s)];
      expect(Array.from(got.out)).toEqual(Array.from(want.out));
      // 8×32 planes of 64×64 take several groups of planes (a group is about 1 MB of operands).
      const dout = randomFloats(rng, got.out.length);
      const [dxGot, dxWant] = [new Float32Array(x.length), new Float32Array(x.length)];
      maxPool2dWasm.backward(dxGot, dout, got.argmax, s);
      maxPool2dReference.backward(dxWant, dout, want.argmax, s);
      expect(Array.from(dxGot)).toEqual(Array.from(dxWant));
    }
  });
});

it('maxPool2dReference.backward matches the numeric gradient of Σ r·forward', () => {
  const s = shapeOf(2, 2, 5, 6);
  const rng = new Rng(8);
  const n = s.batch * s.channels * s.height * s.width;
  // Distinct values at least 1/n apart, so a step of 0.1/n never changes which input wins.
  const order = Array.from({ length: n }, (_, i) => i).sort(() => rng.nextFloat() - 0.5);
  const x = new Float32Array(order.map((v) => v / n));
  const { out, argmax } = pool(maxPool2dReference, x, s);
  const r = randomFloats(rng, out.length);
  const dx = new Float32Array(n);
  maxPool2dReference.backward(dx, r, argmax, s);
  const loss = () => dotLoss(r, pool(maxPool2dReference, x, s).out);
  expect(firstMismatch(dx, numericGradient(loss, x, 0.1 / n), 1e-4, 1e-3)).toBeNull();
});
