import { describe, expect, it } from 'vitest';
import { Rng } from '../rng.js';
import { dotLoss, firstMismatch, numericGradient, randomFloats } from '../testing/numeric.js';
import { conv2dOutputSize, type Conv2dKernel, type Conv2dPadding, type Conv2dShape } from './conv2d.js';
import { conv2dReference } from './conv2d-reference.js';
import { conv2dWasm, createConv2dWasm } from './conv2d-wasm.js';
import { WASM_KERNEL } from './gemm-wasm.js';

const KERNELS: [string, Conv2dKernel][] = [
  ['conv2dReference', conv2dReference],
  ['conv2dWasm', conv2dWasm],
  // Both builds, whichever this engine picks for conv2dWasm.
  ['conv2dWasm relaxed-simd build', createConv2dWasm('relaxed-simd')],
  ['conv2dWasm simd build', createConv2dWasm('simd')],
];

const shapeOf = (batch: number, inC: number, height: number, width: number, outC: number, k: number, padding: Conv2dPadding) =>
  ({ batch, inC, height, width, outC, k, padding }) satisfies Conv2dShape;

/** Sizes of x, w, out for a shape. */
function sizes(s: Conv2dShape) {
  const { outH, outW } = conv2dOutputSize(s);
  return { nx: s.batch * s.inC * s.height * s.width, nw: s.outC * s.inC * s.k * s.k, ny: s.batch * s.outC * outH * outW };
}

describe('conv2dReference by hand', () => {
  // x = [[1,2,3],[4,5,6],[7,8,9]], w = [[1,0],[0,-1]], b = 10: out[i,j] = x[i,j] - x[i+1,j+1] + 10 = 6 everywhere.
  const x = new Float32Array([1, 2, 3, 4, 5, 6, 7, 8, 9]);
  const w = new Float32Array([1, 0, 0, -1]);

  it('forward, valid', () => {
    const out = new Float32Array(4);
    conv2dReference.forward(out, x, w, new Float32Array([10]), shapeOf(1, 1, 3, 3, 1, 2, 'valid'));
    expect(Array.from(out)).toEqual([6, 6, 6, 6]);
  });

  it('forward, same (3×3 kernel of ones: sums of the neighbours inside the image)', () => {
    const out = new Float32Array(9);
    conv2dReference.forward(out, x, new Float32Array(9).fill(1), new Float32Array([0]), shapeOf(1, 1, 3, 3, 1, 3, 'same'));
    expect(Array.from(out)).toEqual([12, 21, 16, 27, 45, 33, 24, 39, 28]);
  });

  it('backward, valid: dw is the correlation of x with dout, dx the full convolution of dout with w', () => {
    const dout = new Float32Array([1, 0, 0, 2]); // gradient at out[0,0] and out[1,1]
    const dw = new Float32Array([100, 0, 0, 0]);
    const db = new Float32Array([1]);
    const dx = new Float32Array(9).fill(Number.NaN);
    conv2dReference.backward(dx, dw, db, dout, x, w, shapeOf(1, 1, 3, 3, 1, 2, 'valid'));
    // dw[di,dj] += x[di,dj]·1 + x[1+di,1+dj]·2
    expect(Array.from(dw)).toEqual([100 + 1 + 10, 2 + 12, 4 + 16, 5 + 18]);
    expect(Array.from(db)).toEqual([4]);
    // dx[y,x] = Σ dout[i,j]·w[y-i, x-j]: out[0,0] puts w at (0,0), out[1,1] puts 2w at (1,1).
    expect(Array.from(dx)).toEqual([1, 0, 0, 0, -1 + 2, 0, 0, 0, -2]);
  });
});

/** (fast - reference) per value, relative to the scale of its terms: the same computation on absolute values. */
function worstForwardError(kernel: Conv2dKernel, s: Conv2dShape, rng: Rng, sparse: boolean): number {
  const { nx, nw, ny } = sizes(s);
  // Sparse inputs look like images and ReLU outputs: non-negative, 80% exact zeros.
  const x = sparse ? randomFloats(rng, nx, 0, 1, 0.8) : randomFloats(rng, nx);
  const w = randomFloats(rng, nw);
  const b = randomFloats(rng, s.outC);
  const got = new Float32Array(ny).fill(Number.NaN);
  const want = new Float32Array(ny);
  const scale = new Float32Array(ny);
  kernel.forward(got, x, w, b, s);
  conv2dReference.forward(want, x, w, b, s);
  conv2dReference.forward(scale, x.map(Math.abs), w.map(Math.abs), b.map(Math.abs), s);
  return worst(got, want, scale);
}

function worst(got: Float32Array, want: Float32Array, scale: Float32Array): number {
  let err = 0;
  for (let i = 0; i < want.length; i++) {
    const e = Math.abs(got[i] - want[i]) / Math.max(scale[i], 1e-30);
    if (!(e <= err)) err = e; // NaN sticks
  }
  return err;
}

/** The same for backward: dw and db accumulate onto random values, dx overwrites NaN garbage. */
function worstBackwardErrors(kernel: Conv2dKernel, s: Conv2dShape, rng: Rng, sparse: boolean, withDx: boolean) {
  const { nx, nw, ny } = sizes(s);
  const x = sparse ? randomFloats(rng, nx, 0, 1, 0.5) : randomFloats(rng, nx);
  const w = randomFloats(rng, nw);
  // After ReLU and 2×2 max-pooling most of dout is 0.
  const dout = sparse ? randomFloats(rng, ny, -1, 1, 0.85) : randomFloats(rng, ny);
  const dw0 = randomFloats(rng, nw);
  const db0 = randomFloats(rng, s.outC);
  const run = (k: Conv2dKernel, xs: Float32Array, ws: Float32Array, d: Float32Array, dw: Float32Array, db: Float32Array) => {
    const dx = new Float32Array(nx).fill(Number.NaN);
    k.backward(withDx ? dx : null, dw, db, d, xs, ws, s);
    return { dw, db, dx };
  };
  const got = run(kernel, x, w, dout, dw0.slice(), db0.slice());
  const want = run(conv2dReference, x, w, dout, dw0.slice(), db0.slice());
  const abs = (a: Float32Array) => a.map(Math.abs);
  const scale = run(conv2dReference, abs(x), abs(w), abs(dout), abs(dw0), abs(db0));
  return {
    dw: worst(got.dw, want.dw, scale.dw),
    db: worst(got.db, want.db, scale.db),
    dx: withDx ? worst(got.dx, want.dx, scale.dx) : 0,
  };
}

// Odd sizes, one channel, batch 1, 3 and 17, both paddings, k = 1, 3, 5 (k = 4 valid: even kernels work unpadded).
const CASES = [
  [1, 1, 7, 9, 1, 3],
  [3, 1, 7, 9, 5, 5],
  [3, 3, 7, 9, 4, 1],
  [17, 2, 6, 11, 3, 3],
  [3, 4, 9, 7, 6, 5],
  [1, 5, 5, 5, 9, 3],
  [3, 1, 28, 28, 8, 5],
  [2, 16, 12, 12, 32, 5],
  [2, 3, 17, 19, 2, 4],
  // Copies of the input larger than a pass of dw takes (256 KB): several chunks of images (nhwc, then runs).
  [5, 16, 30, 30, 4, 3],
  [2, 1, 260, 250, 2, 3],
].flatMap(([batch, inC, h, w, outC, k]) =>
  (['valid', 'same'] as const).filter((p) => p === 'valid' || k % 2 === 1).map((p) => shapeOf(batch, inC, h, w, outC, k, p)),
);

const label = (s: Conv2dShape) => `batch ${s.batch}, ${s.inC}×${s.height}×${s.width} → ${s.outC}, k ${s.k}, ${s.padding}`;

describe.each(KERNELS.slice(1))('%s matches conv2dReference', (_name, kernel) => {
  it.each(CASES.map((s) => [label(s), s] as const))('forward, %s', (_label, s) => {
    const rng = new Rng(s.batch * 7919 + s.inC * 131 + s.height * 17 + s.k);
    const errors = { dense: worstForwardError(kernel, s, rng, false), sparse: worstForwardError(kernel, s, rng, true) };
    expect(Math.max(...Object.values(errors)), JSON.stringify(errors)).toBeLessThanOrEqual(1e-5);
  });

  it.each(CASES.map((s) => [label(s), s] as const))('backward, %s', (_label, s) => {
    const rng = new Rng(s.batch * 7919 + s.inC * 131 + s.height * 17 + s.k + 1);
    const errors = {
      dense: worstBackwardErrors(kernel, s, rng, false, true),
      sparse: worstBackwardErrors(kernel, s, rng, true, true),
      withoutDx: worstBackwardErrors(kernel, s, rng, true, false),
    };
    const all = Object.values(errors).flatMap((e) => Object.values(e));
    expect(Math.max(...all), JSON.stringify(errors)).toBeLessThanOrEqual(1e-5);
  });
});

describe('gradients by finite differences', () => {
  // The loss Σ r·out is linear in each of x, w and b, so central differences are exact up to rounding.
  it.each([
    shapeOf(2, 2, 5, 4, 3, 3, 'valid'),
    shapeOf(2, 2, 5, 4, 3, 3, 'same'),
    shapeOf(1, 3, 4, 6, 2, 1, 'valid'),
    shapeOf(2, 1, 6, 5, 2, 5, 'same'),
  ])('conv2dReference.backward matches the numeric gradient of Σ r·forward (%o)', (s) => {
    const rng = new Rng(s.k * 100 + (s.padding === 'same' ? 1 : 0));
    const { nx, nw, ny } = sizes(s);
    const x = randomFloats(rng, nx);
    const w = randomFloats(rng, nw);
    const b = randomFloats(rng, s.outC);
    const r = randomFloats(rng, ny);
    const out = new Float32Array(ny);
    const loss = () => {
      conv2dReference.forward(out, x, w, b, s);
      return dotLoss(r, out);
    };
    const dx = new Float32Array(nx);
    const dw = new Float32Array(nw);
    const db = new Float32Array(s.outC);
    conv2dReference.backward(dx, dw, db, r, x, w, s);
    for (const [name, param, grad] of [
      ['x', x, dx],
      ['w', w, dw],
      ['b', b, db],
    ] as const) {
      expect(firstMismatch(grad, numericGradient(loss, param, 0.25), 1e-4, 1e-4), name).toBeNull();
    }
  });
});

describe.each(KERNELS)('%s', (_name, kernel) => {
  it('propagates NaN from x into exactly the outputs whose window holds it', () => {
    const x = new Float32Array(15);
    x[9] = Number.NaN; // row 1, column 4 of a 3×5 image of zeros
    const out = new Float32Array(3);
    kernel.forward(out, x, new Float32Array(9).fill(1), new Float32Array([0.5]), shapeOf(1, 1, 3, 5, 1, 3, 'valid'));
    expect(Array.from(out)).toEqual([0.5, 0.5, Number.NaN]);
  });

  it('leaves outputs beyond the shape untouched and writes nothing for batch 0', () => {
    const out = new Float32Array(5).fill(7);
    kernel.forward(out, new Float32Array(4), new Float32Array(1), new Float32Array([2]), shapeOf(1, 1, 2, 2, 1, 1, 'valid'));
    expect(Array.from(out)).toEqual([2, 2, 2, 2, 7]);
    const dw = new Float32Array([3]);
    const db = new Float32Array([4]);
    kernel.backward(null, dw, db, new Float32Array(0), new Float32Array(0), new Float32Array(1), shapeOf(0, 1, 2, 2, 1, 1, 'valid'));
    expect([dw[0], db[0]]).toEqual([3, 4]);
  });

  it.each([
    [shapeOf(1, 1, 3, 3, 1, 2, 'same'), "padding 'same' needs an odd k, got k = 2"],
    [shapeOf(1, 1, 3, 3, 1, 5, 'valid'), "a 5×5 kernel does not fit a 3×3 input with padding 'valid'; use padding 'same' or a smaller k"],
    [shapeOf(1, 0, 3, 3, 1, 1, 'valid'), 'inC must be a whole number >= 1, got 0'],
    [shapeOf(1.5, 1, 3, 3, 1, 1, 'valid'), 'batch must be a whole number >= 0, got 1.5'],
    [{ ...shapeOf(1, 1, 3, 3, 1, 1, 'valid'), padding: 'full' as Conv2dPadding }, `padding must be 'valid' or 'same', got "full"`],
  ])('rejects %o: "%s"', (s, message) => {
    const big = new Float32Array(100);
    expect(() => kernel.forward(big, big, big, big, s)).toThrow(message);
  });

  it.each([
    ['x', 'x holds 17 values, needs 2×1×3×3 = 18'],
    ['w', 'w holds 3 values, needs 1×1×2×2 = 4'],
    ['b', 'b holds 0 values, needs 1'],
    ['out', 'out holds 7 values, needs 2×1×2×2 = 8'],
  ])('rejects a short %s: "%s"', (short, message) => {
    const arrays: Record<string, Float32Array> = {
      x: new Float32Array(18),
      w: new Float32Array(4),
      b: new Float32Array(1),
      out: new Float32Array(8),
    };
    arrays[short] = new Float32Array(arrays[short].length - 1);
    const call = () => kernel.forward(arrays.out, arrays.x, arrays.w, arrays.b, shapeOf(2, 1, 3, 3, 1, 2, 'valid'));
    expect(call).toThrow(RangeError);
    expect(call).toThrow(message);
  });
});

it('conv2dWasm grows its memory for larger shapes and keeps the results right afterwards', () => {
  const kernel = createConv2dWasm('simd');
  const rng = new Rng(3);
  const run = (s: Conv2dShape) => worstForwardError(kernel, s, rng, false) + worstBackwardErrors(kernel, s, rng, false, true).dx;
  expect(run(shapeOf(1, 1, 5, 5, 1, 3, 'valid'))).toBeLessThan(1e-5);
  expect(run(shapeOf(4, 8, 30, 30, 8, 3, 'same'))).toBeLessThan(1e-5); // ~1 MB: pages beyond the first
  expect(run(shapeOf(1, 1, 5, 5, 1, 3, 'same'))).toBeLessThan(1e-5);
});

describe('conv2dWasm passes the batch a group of images at a time: the grouping changes no bit', () => {
  // One image per call, a few, and the whole batch in one call (as before groups existed).
  const grouped = [1, 64 << 10, Number.POSITIVE_INFINITY].map((bytes) => createConv2dWasm(WASM_KERNEL, bytes));
  it.each(
    [shapeOf(17, 3, 11, 9, 5, 3, 'same'), shapeOf(9, 16, 12, 12, 8, 5, 'valid'), shapeOf(5, 16, 30, 30, 4, 3, 'same')].map(
      (s) => [label(s), s] as const,
    ),
  )('%s', (_label, s) => {
    const rng = new Rng(s.batch + s.inC);
    const { nx, nw, ny } = sizes(s);
    const x = randomFloats(rng, nx, 0, 1, 0.6);
    const w = randomFloats(rng, nw);
    const b = randomFloats(rng, s.outC);
    const dout = randomFloats(rng, ny, -1, 1, 0.7);
    const dw0 = randomFloats(rng, nw); // the backward adds into dw and db
    const db0 = randomFloats(rng, s.outC);
    const bits = grouped.map((kernel) => {
      const out = new Float32Array(ny);
      kernel.forward(out, x, w, b, s);
      const [dw, db, dx] = [dw0.slice(), db0.slice(), new Float32Array(nx)];
      kernel.backward(dx, dw, db, dout, x, w, s);
      const [dwOnly, dbOnly] = [dw0.slice(), db0.slice()];
      kernel.backward(null, dwOnly, dbOnly, dout, x, w, s);
      return [out, dw, db, dx, dwOnly, dbOnly].map((a) => Array.from(new Uint32Array(a.buffer)));
    });
    expect(bits[0]).toEqual(bits[2]);
    expect(bits[1]).toEqual(bits[2]);
  });
});
