// Compares the convolution and max-pooling kernels with values computed once by PyTorch in float64
// (fixtures/make_conv_fixtures.py). Inputs are multiples of 1/256, so both sides start from the same numbers.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { firstMismatch } from '../testing/numeric.js';
import type { Conv2dKernel, Conv2dShape } from './conv2d.js';
import { conv2dReference } from './conv2d-reference.js';
import { createConv2dWasm } from './conv2d-wasm.js';
import type { MaxPool2dKernel, Pool2dShape } from './maxpool2d.js';
import { maxPool2dReference } from './maxpool2d-reference.js';
import { maxPool2dWasm } from './maxpool2d-wasm.js';

interface ConvCase {
  shape: Conv2dShape;
  x: number[];
  w: number[];
  b: number[];
  out: number[];
  dout: number[];
  dx: number[];
  dw: number[];
  db: number[];
}

interface PoolCase {
  shape: Pool2dShape;
  x: number[];
  out: number[];
  argmax: number[];
  dout: number[];
  dx: number[];
}

const fixture = JSON.parse(readFileSync(new URL('../../fixtures/conv_pool.json', import.meta.url), 'utf8')) as {
  conv: ConvCase[];
  pool: PoolCase[];
};

// float32 sums of up to 125 products of values below 1 against float64: 1e-5 absolute plus 1e-5 relative.
const ABS = 1e-5;
const REL = 1e-5;

const label = ({ shape: s }: ConvCase) => `batch ${s.batch}, ${s.inC}×${s.height}×${s.width} → ${s.outC}, k ${s.k}, ${s.padding}`;

describe.each([
  ['conv2dReference', conv2dReference],
  ['conv2dWasm relaxed-simd build', createConv2dWasm('relaxed-simd')],
  ['conv2dWasm simd build', createConv2dWasm('simd')],
] as [string, Conv2dKernel][])('%s matches PyTorch', (_name, kernel) => {
  it.each(fixture.conv.map((c) => [label(c), c] as const))('%s: out, dx, dw, db', (_label, c) => {
    const out = new Float32Array(c.out.length);
    kernel.forward(out, new Float32Array(c.x), new Float32Array(c.w), new Float32Array(c.b), c.shape);
    expect(firstMismatch(out, c.out, ABS, REL), 'out').toBeNull();
    const dx = new Float32Array(c.dx.length);
    const dw = new Float32Array(c.dw.length);
    const db = new Float32Array(c.db.length);
    kernel.backward(dx, dw, db, new Float32Array(c.dout), new Float32Array(c.x), new Float32Array(c.w), c.shape);
    expect(firstMismatch(dx, c.dx, ABS, REL), 'dx').toBeNull();
    expect(firstMismatch(dw, c.dw, ABS, REL), 'dw').toBeNull();
    expect(firstMismatch(db, c.db, ABS, REL), 'db').toBeNull();
  });
});

describe.each([
  ['maxPool2dReference', maxPool2dReference],
  ['maxPool2dWasm', maxPool2dWasm],
] as [string, MaxPool2dKernel][])('%s matches PyTorch exactly', (_name, kernel) => {
  it.each(fixture.pool.map((c) => [c.shape, c] as const))('%o: out, argmax (ties: the first maximum), dx', (shape, c) => {
    const out = new Float32Array(c.out.length);
    const argmax = new Int32Array(c.argmax.length);
    kernel.forward(out, argmax, new Float32Array(c.x), shape);
    expect(Array.from(out)).toEqual(c.out);
    expect(Array.from(argmax)).toEqual(c.argmax);
    const dx = new Float32Array(c.dx.length).fill(Number.NaN);
    kernel.backward(dx, new Float32Array(c.dout), argmax, shape);
    expect(Array.from(dx)).toEqual(c.dx);
  });
});
