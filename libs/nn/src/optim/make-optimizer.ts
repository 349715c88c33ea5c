import { ConfigError } from '../config-error.js';
import { Adam } from './adam.js';
import { OPTIMIZER_NAMES, type Optimizer, type OptimizerHyper } from './optimizer.js';
import type { LrSchedule } from './schedule.js';
import { Momentum, Sgd } from './sgd.js';

/** The optimizer called `name` for `size` parameters. */
export function makeOptimizer(name: string, size: number, schedule: LrSchedule, hyper: OptimizerHyper = {}): Optimizer {
  switch (name) {
    case 'sgd':
      return new Sgd(size, schedule, hyper);
    case 'momentum':
      return new Momentum(size, schedule, hyper, false);
    case 'nesterov':
      return new Momentum(size, schedule, hyper, true);
    case 'adam':
      return new Adam(size, schedule, hyper, false);
    case 'adamw':
      return new Adam(size, schedule, { weightDecay: 0.01, ...hyper }, true);
    default:
      throw new ConfigError(`unknown optimizer "${name}" (use ${OPTIMIZER_NAMES.join(', ')})`);
  }
}
