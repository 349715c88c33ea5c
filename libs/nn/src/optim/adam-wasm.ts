import { wasmFloatsBase, wasmFloatsIn } from '../kernels/vec-wasm.js';
import { align16, instantiate, PAGE, readWasm, WebAssembly, type WasmMemory } from '../kernels/wasm-runtime.js';
import type { AdamConstants } from './adam-reference.js';

/**
 * The WebAssembly Adam kernel (source: wasm/adam.ts, AssemblyScript, plain float32 SIMD; built by `npm run
 * build:wasm`), bit-identical to adamReference. Each AdamWasm owns one WebAssembly memory holding six (n) float arrays:
 *
 *   [base(), …)  p | g | m | v | s | d     each 16-byte aligned
 *
 * The memory is sized once, with its maximum equal to its initial size, so it never grows and the views handed out
 * stay valid for the kernel's life. m and v live there, and so can the other operands of a step, which then copies
 * nothing (a step over the MLP's 100k parameters touches 2.4 MB; each copy in or out adds 0.4 MB):
 *  - p is handed out as `params`, a home for the model's parameters (Model's `storage` option); a step on another
 *    array copies it in and back out.
 *  - g is handed out as `gradSum`, a wasmFloats array (with s as the staging area of the additions into it), which
 *    a step reads in place; another gradient sum is copied in.
 *  - d is handed out as `grads`, a home for the model's gradients: adding them into gradSum copies nothing.
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
  /** n floats for the model's parameters, which step() updates in place. */
  readonly params: Float32Array;
  /** n floats for the model's gradients, which addInto adds into gradSum without a copy. */
  readonly grads: Float32Array;
  private readonly g: Float32Array;
  private readonly wasm: AdamExports;

  constructor(readonly size: number) {
    if (!Number.isInteger(size) || size < 0) throw new RangeError(`AdamWasm: size must be a whole number >= 0, got ${size}`);
    const bytes = align16(4 * size);
    const pages = Math.max(1, Math.ceil((BASE + 6 * bytes) / PAGE));
    const memory = new WebAssembly.Memory({ initial: pages, maximum: pages });
    this.wasm = adamOver(memory);
    const [p, g, m, v, s, d] = [0, 1, 2, 3, 4, 5].map((k) => new Float32Array(memory.buffer, BASE + k * bytes, size));
    this.params = p;
    this.g = g;
    this.m = m;
    this.v = v;
    this.grads = d;
    this.gradSum = wasmFloatsIn(memory, g.byteOffset, s.byteOffset, size);
  }

  /**
   * One step on params (n) with the gradient sum (n), each used in place when it is this kernel's own (`params`,
   * `gradSum`), else copied in (and params back out); m and v are this kernel's own.
   */
  step(params: Float32Array, gradSum: Float32Array, c: AdamConstants): void {
    const n = this.size;
    if (params.length !== n || gradSum.length !== n) {
      throw new RangeError(`AdamWasm for ${n} parameters got ${params.length} parameters and ${gradSum.length} gradients`);
    }
    const p = this.params;
    const home = params === p;
    if (!home) p.set(params);
    if (gradSum !== this.gradSum) this.g.set(gradSum);
    const { g, m, v } = this;
    this.wasm.adam(
      n, p.byteOffset, g.byteOffset, m.byteOffset, v.byteOffset,
      c.invBatch, c.l2, c.b1, c.a1, c.b2, c.a2, c.step, c.invC2, c.shrink, c.eps,
    ); // prettier-ignore
    if (!home) params.set(p);
  }
}
