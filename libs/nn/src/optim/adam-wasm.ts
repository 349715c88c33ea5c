import { wasmFloatsBase, wasmFloatsIn } from '../kernels/vec-wasm.js';
import { align16, instantiate, PAGE, readWasm, WebAssembly, type WasmMemory } from '../kernels/wasm-runtime.js';
import type { AdamConstants } from './adam-reference.js';

/**
 * The WebAssembly Adam kernel (source: wasm/adam.ts, AssemblyScript, plain float32 SIMD; built by `npm run
 * build:wasm`), bit-identical to adamReference. Each AdamWasm owns one WebAssembly memory holding four (n) float arrays:
 *
 *   [base(), …)  p (staging for the parameters) | g (staging for the gradient sum) | m | v     each 16-byte aligned
 *
 * The memory is sized once, with its maximum equal to its initial size, so it never grows and the m, v and
 * gradSum views handed out stay valid for the kernel's life. A step copies the parameters in and out; m and v live
 * there, and so can the gradient sum: g is handed out as `gradSum`, a wasmFloats array (with p as the staging area
 * of the additions into it, free between steps), which a step reads in place; another gradient sum is copied in.
 */
interface AdamExports {
  base(): number;
  /** The constants are f32 parameters: WebAssembly rounds each number passed to float32, as adamReference does. */
  adam(
    n: number, p: number, g: number, m: number, v: number,
    invBatch: number, l2: number, b1: number, a1: number, b2: number, a2: number,
    step: number, invC2: number, shrink: number, eps: number,
  ): void; // prettier-ignore
}

const MODULE = new WebAssembly.Module(readWasm('adam.wasm'));
const adamOver = (memory: WasmMemory): AdamExports => instantiate<AdamExports>(MODULE, memory);

/**
 * Where the arrays start: the module's heap base, the same for every instance (read once from a probe), and no
 * lower than where the vector passes over this memory may work.
 */
const BASE = Math.max(adamOver(new WebAssembly.Memory({ initial: 1, maximum: 1 })).base(), wasmFloatsBase);

export class AdamWasm {
  /** First moment (n), a view into this kernel's memory. */
  readonly m: Float32Array;
  /** Second moment (n), a view into this kernel's memory. */
  readonly v: Float32Array;
  /** A gradient sum (n) in this kernel's memory, which step() reads in place; addInto and firstNonFinite too. */
  readonly gradSum: Float32Array;
  private readonly p: Float32Array;
  private readonly g: Float32Array;
  private readonly wasm: AdamExports;

  constructor(readonly size: number) {
    if (!Number.isInteger(size) || size < 0) throw new RangeError(`AdamWasm: size must be a whole number >= 0, got ${size}`);
    const bytes = align16(4 * size);
    const pages = Math.max(1, Math.ceil((BASE + 4 * bytes) / PAGE));
    const memory = new WebAssembly.Memory({ initial: pages, maximum: pages });
    this.wasm = adamOver(memory);
    const [p, g, m, v] = [0, 1, 2, 3].map((k) => new Float32Array(memory.buffer, BASE + k * bytes, size));
    this.p = p;
    this.g = g;
    this.m = m;
    this.v = v;
    this.gradSum = wasmFloatsIn(memory, g.byteOffset, p.byteOffset, size);
  }

  /** One step on p (n) with the gradient sum (n), read in place when it is gradSum; m and v are this kernel's own. */
  step(params: Float32Array, gradSum: Float32Array, c: AdamConstants): void {
    const n = this.size;
    if (params.length !== n || gradSum.length !== n) {
      throw new RangeError(`AdamWasm for ${n} parameters got ${params.length} parameters and ${gradSum.length} gradients`);
    }
    this.p.set(params);
    if (gradSum !== this.gradSum) this.g.set(gradSum);
    const { p, g, m, v } = this;
    this.wasm.adam(
      n, p.byteOffset, g.byteOffset, m.byteOffset, v.byteOffset,
      c.invBatch, c.l2, c.b1, c.a1, c.b2, c.a2, c.step, c.invC2, c.shrink, c.eps,
    ); // prettier-ignore
    params.set(p);
  }
}
