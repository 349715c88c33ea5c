import { readFileSync } from 'node:fs';

/**
 * What the loaders of the WebAssembly kernels (kernels/gemm-wasm.ts, kernels/vec-wasm.ts, kernels/conv2d-wasm.ts,
 * kernels/maxpool2d-wasm.ts, optim/adam-wasm.ts) share:
 * the part of the WebAssembly global they use, typed (it is not in lib es2023 nor in @types/node 20), reading a
 * committed build from wasm/, instantiating a kernel over a memory, and growing a memory.
 */
export interface WasmMemory {
  readonly buffer: ArrayBuffer;
  grow(pages: number): number;
}
interface WasmApi {
  validate(bytes: Uint8Array): boolean;
  Memory: new (descriptor: { initial: number; maximum?: number }) => WasmMemory;
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: { env: { memory: WasmMemory } }) => { exports: unknown };
}
export const WebAssembly = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

export const PAGE = 65536;
export const align16 = (bytes: number): number => (bytes + 15) & ~15;

/** The bytes of wasm/<file>, a build committed beside its AssemblyScript source. */
export function readWasm(file: string): Buffer {
  return readFileSync(new URL(`../../wasm/${file}`, import.meta.url));
}

/** An instance of `module` over `memory`, which every kernel imports as env.memory; returns its exports. */
export function instantiate<T>(module: object, memory: WasmMemory): T {
  return new WebAssembly.Instance(module, { env: { memory } }).exports as T;
}

/**
 * Grows `memory` to hold at least `bytes` bytes (`what` names the caller in the error; a constant, since this runs
 * on every kernel call). Growing detaches views of the old buffer: re-create them.
 */
export function growTo(memory: WasmMemory, bytes: number, what: string): void {
  const have = memory.buffer.byteLength;
  if (bytes <= have) return;
  try {
    memory.grow(Math.ceil((bytes - have) / PAGE));
  } catch (cause) {
    throw new RangeError(`${what}: cannot grow WebAssembly memory to ${bytes} bytes`, { cause });
  }
}
