import { setFlagsFromString } from 'node:v8';
import { checkGemmShapes, type Gemm } from './gemm.js';
import { align16, growTo, instantiate, readWasm, WebAssembly } from './wasm-runtime.js';

/**
 * The WebAssembly SIMD GEMM (source: wasm/gemm.ts, AssemblyScript; built by `npm run build:wasm`). A 4×8 register
 * tile over a packed op(B), for all four transpose forms; every output is one float32 sum over p in order, with
 * zeros multiplied like any value (unlike gemmFast, Inf/NaN in B propagate as in the reference).
 *
 * Loaded synchronously at import: the relaxed-SIMD build (f32x4.relaxed_madd, fused on CPUs with FMA) when the
 * engine validates it, else the plain SIMD build. Node 20 needs a V8 flag for relaxed SIMD, set here with
 * v8.setFlagsFromString; that flag is process-wide and only enables a WebAssembly feature.
 *
 * gemmWasmSkipZeros is the same build's gemmSkipZeros where op(B) = B: terms with A(i,p) = 0 are left out, which
 * pays on images and ReLU outputs (mostly zeros). For finite B it gives gemmWasm's values (up to the sign of a zero
 * sum); like gemmFast, 0·Inf and 0·NaN in B are left out instead of giving NaN. Transposed B runs gemmWasm's kernel.
 *
 * Each call copies A, B (and C when accumulating) into WebAssembly memory and C back out. Memory layout per call:
 * [scratch(), + packedBytes(n, k)) packing space for B (skipZerosBytes(m, n, k) for gemmSkipZeros), then A, B, C,
 * each 16-byte aligned.
 */
export type WasmKernel = 'relaxed-simd' | 'simd';

interface GemmExports {
  scratch(): number;
  packedBytes(n: number, k: number): number;
  gemm(transA: number, transB: number, m: number, n: number, k: number, a: number, b: number, c: number, accumulate: number): void;
  skipZerosBytes(m: number, n: number, k: number): number;
  gemmSkipZeros(transA: number, m: number, n: number, k: number, a: number, b: number, c: number, accumulate: number): void;
}

const FILES: Record<WasmKernel, string> = { 'relaxed-simd': 'gemm-relaxed.wasm', simd: 'gemm-simd.wasm' };

/** The build to use here: relaxed SIMD when the engine validates it, else plain SIMD, else an error. */
function pickKernel(): WasmKernel {
  // Must precede compiling the relaxed build; a no-op on engines where relaxed SIMD is standard.
  setFlagsFromString('--experimental-wasm-relaxed-simd');
  for (const kernel of ['relaxed-simd', 'simd'] as const) if (WebAssembly.validate(readWasm(FILES[kernel]))) return kernel;
  throw new Error(
    `gemmWasm: this JavaScript engine (Node ${process.versions.node}, V8 ${process.versions.v8}) validates neither ` +
      'wasm/gemm-relaxed.wasm nor wasm/gemm-simd.wasm; WebAssembly SIMD is required',
  );
}

/**
 * A Gemm over its own instance (and memory) of the given build; gemmWasm is the one for WASM_KERNEL. With
 * skipZeros, products with op(B) = B run gemmSkipZeros (see above).
 */
export function createGemmWasm(kernel: WasmKernel, skipZeros = false): Gemm {
  const memory = new WebAssembly.Memory({ initial: 1 });
  const wasm = instantiate<GemmExports>(new WebAssembly.Module(readWasm(FILES[kernel])), memory);
  let heap = new Float32Array(memory.buffer);

  return (transA, transB, m, n, k, a, b, c, accumulate) => {
    checkGemmShapes(m, n, k, a, b, c);
    if (m === 0 || n === 0) return;
    const sparse = skipZeros && !transB;
    const aAt = align16(wasm.scratch() + (sparse ? wasm.skipZerosBytes(m, n, k) : wasm.packedBytes(n, k)));
    const bAt = align16(aAt + 4 * m * k);
    const cAt = align16(bAt + 4 * k * n);
    const end = cAt + 4 * m * n;
    // Grow first, then (re)create the view: growing detaches the old buffer.
    growTo(memory, end, 'gemmWasm');
    if (heap.buffer !== memory.buffer) heap = new Float32Array(memory.buffer);
    heap.set(a.length === m * k ? a : a.subarray(0, m * k), aAt >>> 2);
    heap.set(b.length === k * n ? b : b.subarray(0, k * n), bAt >>> 2);
    if (accumulate) heap.set(c.subarray(0, m * n), cAt >>> 2);
    if (sparse) wasm.gemmSkipZeros(transA ? 1 : 0, m, n, k, aAt, bAt, cAt, accumulate ? 1 : 0);
    else wasm.gemm(transA ? 1 : 0, transB ? 1 : 0, m, n, k, aAt, bAt, cAt, accumulate ? 1 : 0);
    c.set(heap.subarray(cAt >>> 2, (cAt >>> 2) + m * n));
  };
}

/** Which build gemmWasm runs: 'relaxed-simd' (fused multiply-add) or 'simd' (multiply, then add). */
export const WASM_KERNEL: WasmKernel = pickKernel();

export const gemmWasm: Gemm = createGemmWasm(WASM_KERNEL);

/** gemmWasm leaving out the terms where A is zero (when B is not transposed): the Model's default. */
export const gemmWasmSkipZeros: Gemm = createGemmWasm(WASM_KERNEL, true);
