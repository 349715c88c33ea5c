import { Optimizer, type OptimizerHyper, type OptimizerName } from './optimizer.js';
import type { LrSchedule } from './schedule.js';

/** Plain SGD with optional L2 weight decay: p -= lr · (g + wd·p). */
export class Sgd extends Optimizer {
  readonly name: OptimizerName = 'sgd';
  constructor(size: number, schedule: LrSchedule, hyper: OptimizerHyper = {}) {
    super(size, schedule, hyper, 0);
  }
  protected update(p: Float32Array, gradSum: Float32Array, batch: number, lr: number): void {
    const wd = this.hyper.weightDecay;
    for (let i = 0; i < p.length; i++) p[i] -= lr * (gradSum[i] / batch + wd * p[i]);
  }
}

/**
 * SGD with momentum (PyTorch's form): v = μ·v + g;  p -= lr · v,
 * or with Nesterov: p -= lr · (g + μ·v).  g includes L2 weight decay: g = ∇ + wd·p.
 */
export class Momentum extends Optimizer {
  readonly name: OptimizerName;
  constructor(
    size: number,
    schedule: LrSchedule,
    hyper: OptimizerHyper = {},
    readonly nesterov = false,
  ) {
    super(size, schedule, hyper, 1);
    this.name = nesterov ? 'nesterov' : 'momentum';
  }
  protected update(p: Float32Array, gradSum: Float32Array, batch: number, lr: number): void {
    const mu = this.hyper.momentum;
    const wd = this.hyper.weightDecay;
    const v = this.buffers[0];
    for (let i = 0; i < p.length; i++) {
      const g = gradSum[i] / batch + wd * p[i];
      const vi = mu * v[i] + g;
      v[i] = vi;
      p[i] -= lr * (this.nesterov ? g + mu * vi : vi);
    }
  }
}
