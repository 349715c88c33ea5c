import { WASM_KERNEL, type WasmKernel } from './gemm-wasm.js';
import { align16, growTo, instantiate, readWasm, WebAssembly } from './wasm-runtime.js';
import { checkConv2d, conv2dOutputSize, conv2dPad, type Conv2dKernel, type Conv2dShape } from './conv2d.js';

/**
 * The WebAssembly SIMD convolution (source: wasm/conv.ts, AssemblyScript; built by `npm run build:wasm`), in the
 * build gemmWasm uses (relaxed SIMD with fused multiply-add where the engine has it, else plain SIMD). The forward
 * is a direct kernel (4 channels × 8 outputs per register tile, all-zero runs of input rows skipped); the backward
 * leaves out the zeros of dout (after ReLU and max-pooling most of it is 0), reading patches straight from a copy
 * of x (no im2col). Left-out terms change nothing for finite values (up to the sign of a zero sum); unlike
 * conv2dReference, 0·Inf and 0·NaN in w (forward) or in x and w (backward) are left out instead of giving NaN.
 *
 * Measured on lenet's layers at batch 64 (AMD EPYC Zen 4, Node 20, one of 2 shared cores; best of rounds, on
 * activations and gradients of a lenet after 300 PyTorch training steps; bench-conv.mjs in wasm/ times the same):
 *   backward   im2col + per-image lists + GEMMs with 8 accumulators: conv1 1.3 ms, conv2 2.7 ms; patches read from
 *              a copy of x through tap offsets instead: 0.86 and 1.66 ms; 7 accumulators (with 8, V8 keeps one on
 *              the stack: 2.5 vs 6.0 multiply-adds per ns in isolation): 0.51 and ~1.8 ms; dw's lists over the
 *              whole batch instead of per image: conv2 1.36-1.46 ms (its dw 0.71 → 0.64 ms); nhwc panels of
 *              contiguous taps (immediate offsets): 1.25-1.33 ms (dw 0.53 ms). Batches whose copy outgrows the
 *              cache run in chunks (convnet's conv2 dw: 22-24 → 14 ms).
 *   forward    the direct kernel runs at ~58 GFLOP/s (conv2: 1.8 ms), the 128-bit FMA peak of a core, so leaving out
 *              zeros pays only where inputs have long zero runs: skipping them took conv1 from 0.51 to 0.41 ms and
 *              left conv2 (whose input has few) unchanged. An im2col GEMM cannot beat a kernel at peak.
 *   builds     relaxed and plain SIMD ran at the same speed on this CPU (it multiplies and adds on separate pipes).
 *
 * Each call copies its operands into the instance's memory and the results back out. Layout per call:
 * [base(), + scratch bytes) the module's scratch, then the tensors, each 16-byte aligned, x with 32 spare bytes.
 * The memory grows when a call needs more than any before; no buffer is allocated per call.
 */
interface ConvExports {
  base(): number;
  forwardScratchBytes(inC: number, h: number, w: number, outC: number, k: number, pad: number): number;
  forward(
    batch: number,
    inC: number,
    h: number,
    w: number,
    outC: number,
    k: number,
    pad: number,
    x: number,
    wt: number,
    b: number,
    y: number,
  ): void;
  backwardScratchBytes(batch: number, inC: number, h: number, w: number, outC: number, k: number, pad: number, withDx: number): number;
  backward(
    batch: number, inC: number, h: number, w: number, outC: number, k: number, pad: number,
    x: number, wt: number, dy: number, dw: number, db: number, dx: number,
  ): void; // prettier-ignore
}

const FILES: Record<WasmKernel, string> = { 'relaxed-simd': 'conv-relaxed.wasm', simd: 'conv-simd.wasm' };

/** A Conv2dKernel over its own instance (and memory) of the given build; conv2dWasm is the one for WASM_KERNEL. */
export function createConv2dWasm(kernel: WasmKernel): Conv2dKernel {
  const memory = new WebAssembly.Memory({ initial: 1 });
  const wasm = instantiate<ConvExports>(new WebAssembly.Module(readWasm(FILES[kernel])), memory);
  const base = wasm.base();
  let heap = new Float32Array(memory.buffer);

  /** Grows the memory to `end` bytes and refreshes the view (growing detaches the old buffer). */
  const reserve = (end: number) => {
    growTo(memory, end, 'conv2dWasm');
    if (heap.buffer !== memory.buffer) heap = new Float32Array(memory.buffer);
  };
  /** Copies the first n values of `array` to byte address `at`. */
  const put = (array: Float32Array, n: number, at: number) => heap.set(array.length === n ? array : array.subarray(0, n), at >>> 2);
  /** Copies n floats from byte address `at` into `array`. */
  const take = (array: Float32Array, n: number, at: number) => array.set(heap.subarray(at >>> 2, (at >>> 2) + n));

  return {
    forward(out, x, w, b, shape) {
      checkConv2d(shape, { out, x, w, b });
      const { batch, inC, height, width, outC, k } = shape;
      const pad = conv2dPad(shape);
      const { nx, nw, ny } = counts(shape);
      const xAt = align16(base + wasm.forwardScratchBytes(inC, height, width, outC, k, pad));
      const wAt = align16(xAt + 4 * nx + 32);
      const bAt = align16(wAt + 4 * nw);
      const yAt = align16(bAt + 4 * outC);
      reserve(yAt + 4 * ny);
      put(x, nx, xAt);
      put(w, nw, wAt);
      put(b, outC, bAt);
      wasm.forward(batch, inC, height, width, outC, k, pad, xAt, wAt, bAt, yAt);
      take(out, ny, yAt);
    },

    backward(dx, dw, db, dout, x, w, shape) {
      checkConv2d(shape, { dw, db, dout, x, w, ...(dx ? { dx } : {}) });
      const { batch, inC, height, width, outC, k } = shape;
      const pad = conv2dPad(shape);
      const { nx, nw, ny } = counts(shape);
      const xAt = align16(base + wasm.backwardScratchBytes(batch, inC, height, width, outC, k, pad, dx ? 1 : 0));
      const wAt = align16(xAt + 4 * nx + 32);
      const dyAt = align16(wAt + 4 * nw);
      const dwAt = align16(dyAt + 4 * ny);
      const dbAt = align16(dwAt + 4 * nw);
      const dxAt = align16(dbAt + 4 * outC);
      reserve(dxAt + (dx ? 4 * nx : 0));
      put(x, nx, xAt);
      if (dx) put(w, nw, wAt);
      put(dout, ny, dyAt);
      put(dw, nw, dwAt);
      put(db, outC, dbAt);
      wasm.backward(batch, inC, height, width, outC, k, pad, xAt, wAt, dyAt, dwAt, dbAt, dx ? dxAt : 0);
      take(dw, nw, dwAt);
      take(db, outC, dbAt);
      if (dx) take(dx, nx, dxAt);
    },
  };
}

/** Number of values of x, w and out. */
function counts(shape: Conv2dShape): { nx: number; nw: number; ny: number } {
  const { batch, inC, height, width, outC, k } = shape;
  const { outH, outW } = conv2dOutputSize(shape);
  return { nx: batch * inC * height * width, nw: outC * inC * k * k, ny: batch * outC * outH * outW };
}

export const conv2dWasm: Conv2dKernel = createConv2dWasm(WASM_KERNEL);
