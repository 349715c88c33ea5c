import { addIntoReference, firstNonFiniteReference, unitFloatsReference } from './vec-reference.js';
import { addIntoWasm, firstNonFiniteWasm, unitFloatsWasm } from './vec-wasm.js';

/**
 * wasmFloats(n): n zeros in a Float32Array that lives in WebAssembly memory, which addInto (as the sum) and
 * firstNonFinite then use in place, copying nothing of it: for a sum that gradients are added into, then checked.
 */
export { wasmFloats } from './vec-wasm.js';

/** Below this many values the TypeScript loops beat copying into WebAssembly memory. */
const WASM_FROM = 256;

/**
 * sum[i] += g[i] for i < sum.length (float32 additions, in place); g must hold at least sum.length values.
 * The same bits whichever kernel runs: float32 addition is correctly rounded.
 */
export function addInto(sum: Float32Array, g: Float32Array): void {
  if (g.length < sum.length) throw new RangeError(`addInto: sum holds ${sum.length} values but g only ${g.length}`);
  const gn = g.length === sum.length ? g : g.subarray(0, sum.length);
  if (sum.length < WASM_FROM) addIntoReference(sum, gn);
  else addIntoWasm(sum, gn);
}

/** Index of the first NaN or ±Infinity, or -1. */
export function firstNonFinite(values: Float32Array): number {
  return values.length < WASM_FROM ? firstNonFiniteReference(values) : firstNonFiniteWasm(values);
}

/** into[i] = bytes[i] / 255 as float32 (pixels to [0, 1]); the same bits whichever kernel runs. */
export function unitFloats(bytes: Uint8Array, into: Float32Array): void {
  if (bytes.length < WASM_FROM) unitFloatsReference(bytes, into);
  else unitFloatsWasm(bytes, into);
}
