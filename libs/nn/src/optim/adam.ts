import { ConfigError } from '../config-error.js';
import type { ModelStorage } from '../model.js';
import { adamReference, type AdamConstants } from './adam-reference.js';
import { AdamWasm } from './adam-wasm.js';
import { Optimizer, type OptimizerHyper, type OptimizerName } from './optimizer.js';
import type { LrSchedule } from './schedule.js';

/** Which kernel applies the update: the WebAssembly one (default) or the TypeScript reference; bit-identical. */
export type AdamKernel = 'wasm' | 'reference';
export const ADAM_KERNELS: readonly AdamKernel[] = ['wasm', 'reference'];

/**
 * Adam, and AdamW with decoupled weight decay (PyTorch's forms):
 *   m = β1·m + (1-β1)·g;  v = β2·v + (1-β2)·g²;  p -= lr · (m / (1-β1^t)) / (√(v / (1-β2^t)) + ε)
 * Adam adds wd·p to g (L2); AdamW first shrinks p *= 1 - lr·wd.
 * Computed in float32, every operation rounded (adam-reference.ts; adam.wasm gives the same bits with float32 SIMD).
 */
export class Adam extends Optimizer {
  readonly name: OptimizerName;
  private readonly wasm: AdamWasm | null;
  private readonly constants: AdamConstants = {
    invBatch: 0, l2: 0, b1: 0, a1: 0, b2: 0, a2: 0, step: 0, invC2: 0, shrink: 0, eps: 0,
  }; // prettier-ignore

  constructor(
    size: number,
    schedule: LrSchedule,
    hyper: OptimizerHyper = {},
    readonly decoupled = false,
    readonly kernel: AdamKernel = 'wasm',
  ) {
    const wasm = Adam.wasmFor(kernel, size);
    super(size, schedule, hyper, wasm ? [wasm.m, wasm.v] : 2);
    this.wasm = wasm;
    this.name = decoupled ? 'adamw' : 'adam';
  }

  private static wasmFor(kernel: AdamKernel, size: number): AdamWasm | null {
    if (!ADAM_KERNELS.includes(kernel)) throw new ConfigError(`unknown Adam kernel "${String(kernel)}" (use ${ADAM_KERNELS.join(' or ')})`);
    return kernel === 'wasm' ? new AdamWasm(size) : null;
  }

  override modelStorage(): ModelStorage | undefined {
    return this.wasm ? { params: this.wasm.params, grads: this.wasm.grads } : undefined;
  }

  protected override makeGradientSum(): Float32Array {
    return this.wasm ? this.wasm.gradSum : super.makeGradientSum();
  }

  protected update(p: Float32Array, gradSum: Float32Array, batch: number, lr: number): void {
    const { beta1, beta2, eps, weightDecay } = this.hyper;
    const c = this.constants; // reused: no allocation per step
    c.invBatch = 1 / batch;
    c.step = lr / (1 - beta1 ** this.t);
    c.invC2 = 1 / (1 - beta2 ** this.t);
    c.l2 = this.decoupled ? 0 : weightDecay;
    c.shrink = this.decoupled ? 1 - lr * weightDecay : 1;
    c.b1 = beta1;
    c.a1 = 1 - beta1;
    c.b2 = beta2;
    c.a2 = 1 - beta2;
    c.eps = eps;
    if (this.wasm) this.wasm.step(p, gradSum, c);
    else adamReference(p, gradSum, this.buffers[0], this.buffers[1], c);
  }
}
