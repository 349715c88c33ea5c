import { align16, growTo, instantiate, readWasm, WebAssembly } from './wasm-runtime.js';

/**
 * The WebAssembly vector passes (source: wasm/vec.ts, plain SIMD; built by `npm run build:wasm`), exact equivalents
 * of the TypeScript loops addIntoReference and firstNonFiniteReference (vec-reference.ts). One instance with its
 * own memory, private to this file: each call copies its operands in (and `sum` back out), growing the memory
 * when an operand is larger than any before; the staging views are re-created after growth and never leave here.
 */
interface VecExports {
  base(): number;
  addInto(n: number, sum: number, g: number): void;
  firstNonFinite(n: number, x: number): number;
}

const memory = new WebAssembly.Memory({ initial: 1 });
const wasm = instantiate<VecExports>(new WebAssembly.Module(readWasm('vec.wasm')), memory);
const BASE = wasm.base();
let heap = new Float32Array(memory.buffer);

/** Makes room for two arrays of n floats at BASE and BASE + align16(4n); returns the second's float index. */
function reserve(n: number): number {
  const second = BASE + align16(4 * n);
  growTo(memory, second + 4 * n, 'vector ops');
  if (heap.buffer !== memory.buffer) heap = new Float32Array(memory.buffer); // growing detached the old view
  return second >>> 2;
}

/** sum += g element by element (float32 additions, in place), as addIntoReference. sum and g are (n). */
export function addIntoWasm(sum: Float32Array, g: Float32Array): void {
  if (g.length !== sum.length) throw new RangeError(`addInto: sum holds ${sum.length} values, g ${g.length}`);
  const n = sum.length;
  const gAt = reserve(n);
  const sumAt = BASE >>> 2;
  heap.set(sum, sumAt);
  heap.set(g, gAt);
  wasm.addInto(n, BASE, gAt << 2);
  sum.set(heap.subarray(sumAt, sumAt + n));
}

/** Index of the first NaN or ±Infinity in values, or -1, as firstNonFiniteReference. */
export function firstNonFiniteWasm(values: Float32Array): number {
  reserve(values.length);
  heap.set(values, BASE >>> 2);
  return wasm.firstNonFinite(values.length, BASE);
}
