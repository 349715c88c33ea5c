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
 * Each call copies its operands into the instance's memory and the results back out, a group of images at a time
 * (as many as fit `groupBytes` of their input, output and gradients, at least one), so that the memory stays small
 * whatever the batch: the forward computes each image on its own, and the backward carries its sums from group to
 * group (wasm/conv.ts: backwardBegin, backwardImages, backwardEnd), so the grouping changes no bit. Layout per call:
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
  backwardBegin(most: number, inC: number, h: number, w: number, outC: number, k: number, pad: number, wt: number, withDx: number): void;
  backwardImages(
    most: number, images: number, inC: number, h: number, w: number, outC: number, k: number, pad: number,
    x: number, dy: number, dx: number,
  ): void; // prettier-ignore
  backwardEnd(
    most: number,
    inC: number,
    h: number,
    w: number,
    outC: number,
    k: number,
    pad: number,
    dw: number,
    db: number,
    withDx: number,
  ): void;
}

/**
 * Bytes of images' tensors per call (see createConv2dWasm). Measured with convnet's gradientOf at batch 128 (9
 * interleaved rounds on a shared core, median / best): the whole batch in one call 215 / 189 ms, groups of 256 KB
 * 225 / 191, 1 MB 233 / 193, 4 MB 235 / 194 ms: the same within the noise, while the kernels' memory goes from
 * ~100 MB to ~2 MB (a convnet worker's peak RSS 357 → 262 MB, with the pooling and vector passes grouped too).
 */
export const CONV_GROUP_BYTES = 1 << 20;

const FILES: Record<WasmKernel, string> = { 'relaxed-simd': 'conv-relaxed.wasm', simd: 'conv-simd.wasm' };

/**
 * A Conv2dKernel over its own instance (and memory) of the given build, passing at most `groupBytes` of images'
 * tensors per call; conv2dWasm is the one for WASM_KERNEL.
 */
export function createConv2dWasm(kernel: WasmKernel, groupBytes = CONV_GROUP_BYTES): Conv2dKernel {
  const memory = new WebAssembly.Memory({ initial: 1 });
  const wasm = instantiate<ConvExports>(new WebAssembly.Module(readWasm(FILES[kernel])), memory);
  const base = wasm.base();
  let heap = new Float32Array(memory.buffer);

  /** Grows the memory to `end` bytes and refreshes the view (growing detaches the old buffer). */
  const reserve = (end: number) => {
    growTo(memory, end, 'conv2dWasm');
    if (heap.buffer !== memory.buffer) heap = new Float32Array(memory.buffer);
  };
  /** Copies n values of `array` from index `from` to byte address `at`. */
  const put = (array: Float32Array, from: number, n: number, at: number) => heap.set(array.subarray(from, from + n), at >>> 2);
  /** Copies n floats from byte address `at` into `array` from index `to`. */
  const take = (array: Float32Array, to: number, n: number, at: number) => array.set(heap.subarray(at >>> 2, (at >>> 2) + n), to);

  return {
    forward(out, x, w, b, shape) {
      checkConv2d(shape, { out, x, w, b });
      const { batch, inC, height, width, outC, k } = shape;
      const pad = conv2dPad(shape);
      const { xImage, yImage, nw } = counts(shape);
      const most = groupOf(batch, 4 * (xImage + yImage), groupBytes);
      const wAt = align16(base + wasm.forwardScratchBytes(inC, height, width, outC, k, pad));
      const bAt = align16(wAt + 4 * nw);
      const xAt = align16(bAt + 4 * outC);
      const yAt = align16(xAt + 4 * most * xImage + 32);
      reserve(yAt + 4 * most * yImage);
      put(w, 0, nw, wAt);
      put(b, 0, outC, bAt);
      for (let n = 0; n < batch; n += most) {
        const images = Math.min(most, batch - n);
        put(x, n * xImage, images * xImage, xAt);
        wasm.forward(images, inC, height, width, outC, k, pad, xAt, wAt, bAt, yAt);
        take(out, n * yImage, images * yImage, yAt);
      }
    },

    backward(dx, dw, db, dout, x, w, shape) {
      checkConv2d(shape, { dw, db, dout, x, w, ...(dx ? { dx } : {}) });
      const { batch, inC, height, width, outC, k } = shape;
      const pad = conv2dPad(shape);
      const { xImage, yImage, nw } = counts(shape);
      const withDx = dx ? 1 : 0;
      const most = groupOf(batch, 4 * ((1 + withDx) * xImage + yImage), groupBytes);
      const wAt = align16(base + wasm.backwardScratchBytes(most, inC, height, width, outC, k, pad, withDx));
      const dwAt = align16(wAt + 4 * nw);
      const dbAt = align16(dwAt + 4 * nw);
      const xAt = align16(dbAt + 4 * outC);
      const dyAt = align16(xAt + 4 * most * xImage + 32);
      const dxAt = align16(dyAt + 4 * most * yImage);
      reserve(dxAt + 4 * most * xImage * withDx);
      if (dx) put(w, 0, nw, wAt);
      wasm.backwardBegin(most, inC, height, width, outC, k, pad, wAt, withDx);
      for (let n = 0; n < batch; n += most) {
        const images = Math.min(most, batch - n);
        put(x, n * xImage, images * xImage, xAt);
        put(dout, n * yImage, images * yImage, dyAt);
        wasm.backwardImages(most, images, inC, height, width, outC, k, pad, xAt, dyAt, dx ? dxAt : 0);
        if (dx) take(dx, n * xImage, images * xImage, dxAt);
      }
      put(dw, 0, nw, dwAt);
      put(db, 0, outC, dbAt);
      wasm.backwardEnd(most, inC, height, width, outC, k, pad, dwAt, dbAt, withDx);
      take(dw, 0, nw, dwAt);
      take(db, 0, outC, dbAt);
    },
  };
}

/** Images per call: as many as fit `groupBytes` at `imageBytes` each, at least 1, at most the batch. */
function groupOf(batch: number, imageBytes: number, groupBytes: number): number {
  return Math.max(1, Math.min(batch, Math.floor(groupBytes / imageBytes)));
}

/** Values of one image of x and of out, and of w. */
function counts(shape: Conv2dShape): { xImage: number; yImage: number; nw: number } {
  const { inC, height, width, outC, k } = shape;
  const { outH, outW } = conv2dOutputSize(shape);
  return { xImage: inC * height * width, yImage: outC * outH * outW, nw: outC * inC * k * k };
}

export const conv2dWasm: Conv2dKernel = createConv2dWasm(WASM_KERNEL);
