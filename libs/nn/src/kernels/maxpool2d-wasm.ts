import { align16, growTo, instantiate, readWasm, WebAssembly } from './wasm-runtime.js';
import { checkMaxPool2d, maxPool2dOutputSize, type MaxPool2dKernel, type Pool2dShape } from './maxpool2d.js';

/**
 * The WebAssembly SIMD max-pooling (source: wasm/pool.ts, plain SIMD; built by `npm run build:wasm`), bit for bit
 * maxPool2dReference: four windows at a time, branch-free. One instance with its own memory, private to this
 * file: each call copies its operands in and the results out, a group of planes at a time (each plane is pooled
 * on its own, so grouping changes nothing), so that the memory stays at about POOL_GROUP_BYTES whatever the batch;
 * the staging views are re-created after growth and never leave here.
 *
 * Layout per group: [base(), …) the input (x, or dx for backward), the output (out, or dout), argmax, each 16-byte
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

/** Bytes of planes' input, output and argmax per call. */
const POOL_GROUP_BYTES = 1 << 20;

/** The planes of a shape, their sizes, and where a group of `most` planes lies: input, output (floats), argmax. */
function layout(shape: Pool2dShape) {
  const { outH, outW } = maxPool2dOutputSize(shape);
  const planes = shape.batch * shape.channels;
  const inPlane = shape.height * shape.width;
  const outPlane = outH * outW;
  const most = Math.max(1, Math.min(planes, Math.floor(POOL_GROUP_BYTES / (4 * (inPlane + 2 * outPlane)))));
  const outAt = align16(BASE + 4 * most * inPlane);
  const argAt = align16(outAt + 4 * most * outPlane);
  reserve(argAt + 4 * most * outPlane);
  return { planes, inPlane, outPlane, most, outAt, argAt };
}

export const maxPool2dWasm: MaxPool2dKernel = {
  // out, argmax (batch, channels, ⌊height/2⌋, ⌊width/2⌋) = max, where of x (batch, channels, height, width)
  forward(out, argmax, x, shape) {
    checkMaxPool2d(shape, 'x', x.length, 'out', out.length, argmax.length);
    const { planes, inPlane, outPlane, most, outAt, argAt } = layout(shape);
    for (let p = 0; p < planes; p += most) {
      const group = Math.min(most, planes - p);
      floats.set(x.subarray(p * inPlane, (p + group) * inPlane), BASE >>> 2);
      wasm.forward(group, shape.height, shape.width, BASE, outAt, argAt);
      out.set(floats.subarray(outAt >>> 2, (outAt >>> 2) + group * outPlane), p * outPlane);
      argmax.set(ints.subarray(argAt >>> 2, (argAt >>> 2) + group * outPlane), p * outPlane);
    }
  },

  // dx (batch, channels, height, width) = dout (batch, channels, ⌊height/2⌋, ⌊width/2⌋) at argmax, 0 elsewhere
  backward(dx, dout, argmax, shape) {
    checkMaxPool2d(shape, 'dx', dx.length, 'dout', dout.length, argmax.length);
    const { planes, inPlane, outPlane, most, outAt, argAt } = layout(shape);
    for (let p = 0; p < planes; p += most) {
      const group = Math.min(most, planes - p);
      floats.set(dout.subarray(p * outPlane, (p + group) * outPlane), outAt >>> 2);
      ints.set(argmax.subarray(p * outPlane, (p + group) * outPlane), argAt >>> 2);
      wasm.backward(group, shape.height, shape.width, outAt, argAt, BASE);
      dx.set(floats.subarray(BASE >>> 2, (BASE >>> 2) + group * inPlane), p * inPlane);
    }
  },
};
