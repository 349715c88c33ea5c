import { align16, growTo, instantiate, readWasm, WebAssembly } from './wasm-runtime.js';
import { checkMaxPool2d, maxPool2dOutputSize, type MaxPool2dKernel, type Pool2dShape } from './maxpool2d.js';

/**
 * The WebAssembly SIMD max-pooling (source: wasm/pool.ts, plain SIMD; built by `npm run build:wasm`), bit for bit
 * maxPool2dReference: four windows at a time, branch-free. One instance with its own memory, private to this
 * file: each call copies its operands in and the results out, growing the memory when a shape needs more than any
 * before; the staging views are re-created after growth and never leave here.
 *
 * Layout per call: [base(), …) the input (x or dout, then argmax for backward), then the outputs, each 16-byte
 * aligned.
 */
interface PoolExports {
  base(): number;
  forward(planes: number, h: number, w: number, x: number, out: number, argmax: number): void;
  backward(planes: number, h: number, w: number, dout: number, argmax: number, dx: number): void;
}

const memory = new WebAssembly.Memory({ initial: 1 });
const wasm = instantiate<PoolExports>(new WebAssembly.Module(readWasm('pool.wasm')), memory);
const BASE = wasm.base();
let floats = new Float32Array(memory.buffer);
let ints = new Int32Array(memory.buffer);

/** Grows the memory to `end` bytes and refreshes the views (growing detaches the old buffer). */
function reserve(end: number): void {
  growTo(memory, end, 'maxPool2dWasm');
  if (floats.buffer !== memory.buffer) {
    floats = new Float32Array(memory.buffer);
    ints = new Int32Array(memory.buffer);
  }
}

/** Sizes of the input and the output of a shape, and where they lie: input, output (floats), argmax. */
function layout(shape: Pool2dShape): { planes: number; inputs: number; outputs: number; outAt: number; argAt: number } {
  const { outH, outW } = maxPool2dOutputSize(shape);
  const planes = shape.batch * shape.channels;
  const inputs = planes * shape.height * shape.width;
  const outputs = planes * outH * outW;
  const outAt = align16(BASE + 4 * inputs);
  const argAt = align16(outAt + 4 * outputs);
  reserve(argAt + 4 * outputs);
  return { planes, inputs, outputs, outAt, argAt };
}

export const maxPool2dWasm: MaxPool2dKernel = {
  // out, argmax (batch, channels, ⌊height/2⌋, ⌊width/2⌋) = max, where of x (batch, channels, height, width)
  forward(out, argmax, x, shape) {
    checkMaxPool2d(shape, 'x', x.length, 'out', out.length, argmax.length);
    const { planes, inputs, outputs, outAt, argAt } = layout(shape);
    floats.set(x.length === inputs ? x : x.subarray(0, inputs), BASE >>> 2);
    wasm.forward(planes, shape.height, shape.width, BASE, outAt, argAt);
    out.set(floats.subarray(outAt >>> 2, (outAt >>> 2) + outputs));
    argmax.set(ints.subarray(argAt >>> 2, (argAt >>> 2) + outputs));
  },

  // dx (batch, channels, height, width) = dout (batch, channels, ⌊height/2⌋, ⌊width/2⌋) at argmax, 0 elsewhere
  backward(dx, dout, argmax, shape) {
    checkMaxPool2d(shape, 'dx', dx.length, 'dout', dout.length, argmax.length);
    const { planes, inputs, outputs, outAt, argAt } = layout(shape);
    // Here the output slot holds dout and the input slot receives dx.
    floats.set(dout.length === outputs ? dout : dout.subarray(0, outputs), outAt >>> 2);
    ints.set(argmax.length === outputs ? argmax : argmax.subarray(0, outputs), argAt >>> 2);
    wasm.backward(planes, shape.height, shape.width, outAt, argAt, BASE);
    dx.set(floats.subarray(BASE >>> 2, (BASE >>> 2) + inputs));
  },
};
