import { Optimizer, type OptimizerHyper, type OptimizerName } from './optimizer.js';
import type { LrSchedule } from './schedule.js';

/**
 * Adam, and AdamW with decoupled weight decay (PyTorch's forms):
 *   m = β1·m + (1-β1)·g;  v = β2·v + (1-β2)·g²;  p -= lr · (m / (1-β1^t)) / (√(v / (1-β2^t)) + ε)
 * Adam adds wd·p to g (L2); AdamW first shrinks p *= 1 - lr·wd.
 */
export class Adam extends Optimizer {
  readonly name: OptimizerName;
  constructor(
    size: number,
    schedule: LrSchedule,
    hyper: OptimizerHyper = {},
    readonly decoupled = false,
  ) {
    super(size, schedule, hyper, 2);
    this.name = decoupled ? 'adamw' : 'adam';
  }
  protected update(p: Float32Array, gradSum: Float32Array, batch: number, lr: number): void {
    const { beta1, beta2, eps, weightDecay } = this.hyper;
    const [m, v] = this.buffers;
    // Constants of this step, hoisted out of the loop over ~10⁵ parameters.
    const invBatch = 1 / batch;
    const step = lr / (1 - beta1 ** this.t); // lr · bias correction of m
    const invC2 = 1 / (1 - beta2 ** this.t); // bias correction of v
    const l2 = this.decoupled ? 0 : weightDecay;
    const shrink = this.decoupled ? 1 - lr * weightDecay : 1;
    const b1 = beta1, a1 = 1 - beta1, b2 = beta2, a2 = 1 - beta2; // prettier-ignore
    const n = p.length;
    for (let i = 0; i < n; i++) {
      const pi = p[i];
      const g = gradSum[i] * invBatch + l2 * pi;
      const mi = b1 * m[i] + a1 * g;
      const vi = b2 * v[i] + a2 * g * g;
      m[i] = mi;
      v[i] = vi;
      p[i] = pi * shrink - (step * mi) / (Math.sqrt(vi * invC2) + eps);
    }
  }
}
