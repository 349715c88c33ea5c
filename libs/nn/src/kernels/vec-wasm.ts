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
  unitFloats(n: number, src: number, dst: number): void;
}

const memory = new WebAssembly.Memory({ initial: 1 });
const wasm = instantiate<VecExports>(new WebAssembly.Module(readWasm('vec.wasm')), memory);
const BASE = wasm.base();
let heap = new Float32Array(memory.buffer);
let heapBytes = new Uint8Array(memory.buffer);

/** Makes room for an array of `first` bytes at BASE and n floats at BASE + align16(first); returns the second's float index. */
function reserve(n: number, first = 4 * n): number {
  const second = BASE + align16(first);
  growTo(memory, second + 4 * n, 'vector ops');
  if (heap.buffer !== memory.buffer) {
    heap = new Float32Array(memory.buffer); // growing detached the old views
    heapBytes = new Uint8Array(memory.buffer);
  }
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

/** into[i] = bytes[i] / 255 as float32, as unitFloatsReference. bytes and into are (n). */
export function unitFloatsWasm(bytes: Uint8Array, into: Float32Array): void {
  if (bytes.length !== into.length) throw new RangeError(`unitFloats: ${bytes.length} bytes for ${into.length} floats`);
  const n = bytes.length;
  const intoAt = reserve(n, n);
  heapBytes.set(bytes, BASE);
  wasm.unitFloats(n, BASE, intoAt << 2);
  into.set(heap.subarray(intoAt, intoAt + n));
}
