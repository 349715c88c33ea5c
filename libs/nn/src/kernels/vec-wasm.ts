import { align16, growTo, instantiate, PAGE, readWasm, WebAssembly, type WasmMemory } from './wasm-runtime.js';

/**
 * The WebAssembly vector passes (source: wasm/vec.ts, plain SIMD; built by `npm run build:wasm`), exact equivalents
 * of the TypeScript loops addIntoReference and firstNonFiniteReference (vec-reference.ts). One instance with its
 * own memory, private to this file: each call copies its operands in (and `sum` back out) GROUP values at a time
 * (every pass works value by value, so the grouping changes nothing), so the memory stays small whatever the
 * length; the staging views are re-created after growth and never leave here.
 * An array made by wasmFloats (below) has an instance and memory of its own and is not copied.
 */
interface VecExports {
  base(): number;
  addInto(n: number, sum: number, g: number): void;
  firstNonFinite(n: number, x: number): number;
  unitFloats(n: number, src: number, dst: number): void;
  reluForward(n: number, x: number): void;
  reluBackward(n: number, dout: number, mask: number): void;
}

const MODULE = new WebAssembly.Module(readWasm('vec.wasm'));
const memory = new WebAssembly.Memory({ initial: 1 });
const wasm = instantiate<VecExports>(MODULE, memory);
const BASE = wasm.base();
let heap = new Float32Array(memory.buffer);
let heapBytes = new Uint8Array(memory.buffer);

/** Values per call into the instance: 256 KB a float operand. */
const GROUP = 1 << 16;

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
  const home = homeOf(sum);
  if (home !== undefined) return home.addInto(g);
  const sumAt = BASE >>> 2;
  for (let i = 0; i < sum.length; i += GROUP) {
    const n = Math.min(GROUP, sum.length - i);
    const gAt = reserve(n);
    heap.set(sum.subarray(i, i + n), sumAt);
    heap.set(g.subarray(i, i + n), gAt);
    wasm.addInto(n, BASE, gAt << 2);
    sum.set(heap.subarray(sumAt, sumAt + n), i);
  }
}

/** Index of the first NaN or ±Infinity in values, or -1, as firstNonFiniteReference. */
export function firstNonFiniteWasm(values: Float32Array): number {
  const home = homeOf(values);
  if (home !== undefined) return home.firstNonFinite();
  for (let i = 0; i < values.length; i += GROUP) {
    const n = Math.min(GROUP, values.length - i);
    reserve(n);
    heap.set(values.subarray(i, i + n), BASE >>> 2);
    const at = wasm.firstNonFinite(n, BASE);
    if (at >= 0) return i + at;
  }
  return -1;
}

/** into[i] = bytes[i] / 255 as float32, as unitFloatsReference. bytes and into are (n). */
export function unitFloatsWasm(bytes: Uint8Array, into: Float32Array): void {
  if (bytes.length !== into.length) throw new RangeError(`unitFloats: ${bytes.length} bytes for ${into.length} floats`);
  for (let i = 0; i < bytes.length; i += GROUP) {
    const n = Math.min(GROUP, bytes.length - i);
    const intoAt = reserve(n, n);
    heapBytes.set(bytes.subarray(i, i + n), BASE);
    wasm.unitFloats(n, BASE, intoAt << 2);
    into.set(heap.subarray(intoAt, intoAt + n), i);
  }
}

/** out = x < 0 ? 0 : x over the first n values (bit for bit as reluForwardReference); out may be x. */
export function reluForwardWasm(out: Float32Array, x: Float32Array, n: number): void {
  const at = BASE >>> 2;
  for (let i = 0; i < n; i += GROUP) {
    const m = Math.min(GROUP, n - i);
    reserve(m);
    heap.set(x.subarray(i, i + m), at);
    wasm.reluForward(m, BASE);
    out.set(heap.subarray(at, at + m), i);
  }
}

/** dx = mask > 0 ? dout : 0 over the first n values (bit for bit as reluBackwardReference); dx may be dout or mask. */
export function reluBackwardWasm(dx: Float32Array, dout: Float32Array, mask: Float32Array, n: number): void {
  const at = BASE >>> 2;
  for (let i = 0; i < n; i += GROUP) {
    const m = Math.min(GROUP, n - i);
    const maskAt = reserve(m);
    heap.set(dout.subarray(i, i + m), at);
    heap.set(mask.subarray(i, i + m), maskAt);
    wasm.reluBackward(m, BASE, maskAt << 2);
    dx.set(heap.subarray(at, at + m), i);
  }
}

/**
 * A float32 array in WebAssembly memory, for a sum that many vectors are added into and that is then checked (the
 * trainer's gradient sum): addInto and firstNonFinite run on it in place, copying only the other operand (into a
 * staging area of n floats in the same memory; nothing when that operand lives in the same memory too), where an
 * ordinary array is copied in and, for addInto, back out.
 * The memory must never grow (its maximum equal to its initial size), so that `values` stays valid. vec.wasm has
 * no data of its own, so an instance over a memory leaves everything past base() as it is.
 */
class WasmFloats {
  readonly values: Float32Array;
  private readonly staging: Float32Array;
  private readonly wasm: VecExports;

  constructor(memory: WasmMemory, valuesAt: number, stagingAt: number, n: number) {
    this.wasm = instantiate<VecExports>(MODULE, memory);
    this.values = new Float32Array(memory.buffer, valuesAt, n);
    this.staging = new Float32Array(memory.buffer, stagingAt, n);
  }

  /** values += g, g (n) copied into the staging area unless it lives in this memory. */
  addInto(g: Float32Array): void {
    let at = g.byteOffset;
    if (g.buffer !== this.values.buffer) {
      this.staging.set(g);
      at = this.staging.byteOffset;
    }
    this.wasm.addInto(this.values.length, this.values.byteOffset, at);
  }

  firstNonFinite(): number {
    return this.wasm.firstNonFinite(this.values.length, this.values.byteOffset);
  }
}

/** The WasmFloats whose values are `a` (the whole array, not a part), by the memory `a` lives in. */
const homes = new WeakMap<ArrayBufferLike, WasmFloats>();

/** n zeros as a Float32Array living in WebAssembly memory, on which addIntoWasm and firstNonFiniteWasm copy nothing of it. */
export function wasmFloats(n: number): Float32Array {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`wasmFloats: n must be a whole number >= 0, got ${n}`);
  // [base(), …)  values (n floats) | staging (n floats)     each 16-byte aligned
  const bytes = align16(4 * n);
  const pages = Math.max(1, Math.ceil((BASE + 2 * bytes) / PAGE));
  return wasmFloatsIn(new WebAssembly.Memory({ initial: pages, maximum: pages }), BASE, BASE + bytes, n);
}

/**
 * n floats at byte valuesAt of `memory` (a kernel's own, which never grows) as a wasmFloats array, using the n
 * floats at stagingAt, which nothing else may need between calls, as its staging area; both at or past
 * wasmFloatsBase. Used by a kernel that reads the sum from its memory (AdamWasm).
 */
export function wasmFloatsIn(memory: WasmMemory, valuesAt: number, stagingAt: number, n: number): Float32Array {
  if (valuesAt < BASE || stagingAt < BASE) throw new RangeError(`wasmFloatsIn: the arrays must lie at or past byte ${BASE}`);
  const home = new WasmFloats(memory, valuesAt, stagingAt, n);
  homes.set(home.values.buffer, home);
  return home.values;
}

/** The first byte of WebAssembly memory that wasmFloatsIn may use. */
export const wasmFloatsBase = BASE;

/** The WasmFloats of `a` when `a` is one's whole values array, else undefined. */
function homeOf(a: Float32Array): WasmFloats | undefined {
  const home = homes.get(a.buffer);
  return home !== undefined && home.values.byteOffset === a.byteOffset && home.values.length === a.length ? home : undefined;
}
