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
    const c1 = 1 - beta1 ** this.t;
    const c2 = 1 - beta2 ** this.t;
    const l2 = this.decoupled ? 0 : weightDecay;
    const shrink = this.decoupled ? 1 - lr * weightDecay : 1;
    for (let i = 0; i < p.length; i++) {
      const g = gradSum[i] / batch + l2 * p[i];
      const mi = beta1 * m[i] + (1 - beta1) * g;
      const vi = beta2 * v[i] + (1 - beta2) * g * g;
      m[i] = mi;
      v[i] = vi;
      p[i] = p[i] * shrink - (lr * (mi / c1)) / (Math.sqrt(vi / c2) + eps);
    }
  }
}
