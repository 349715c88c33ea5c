import { ConfigError } from '../config-error.js';

/**
 * Learning-rate schedules as pure functions of the step number t (0-based: the rate for the (t+1)-th update).
 * Every schedule may start with a linear warm-up from baseLr/warmupSteps to baseLr over `warmupSteps` steps;
 * the decay then runs over the remaining steps.
 */
export type ScheduleKind = 'constant' | 'step' | 'exponential' | 'cosine';
export const SCHEDULE_KINDS: readonly ScheduleKind[] = ['constant', 'step', 'exponential', 'cosine'];

export interface ScheduleConfig {
  kind: ScheduleKind;
  warmupSteps?: number; // default 0
  stepSize?: number; // step: multiply by gamma every stepSize steps
  gamma?: number; // step and exponential: decay factor (exponential: per step)
  totalSteps?: number; // cosine: length of the run, warm-up included
  minLr?: number; // cosine: the rate it ends at (default 0)
}

export type LrSchedule = (t: number) => number;

/** Builds a schedule after checking every field; errors quote the bad value. */
export function makeSchedule(baseLr: number, config: ScheduleConfig): LrSchedule {
  checkPositive('learning rate', baseLr);
  const warmup = config.warmupSteps ?? 0;
  checkWhole('warm-up steps', warmup);
  const decay = makeDecay(baseLr, config, warmup);
  return (t) => (t < warmup ? (baseLr * (t + 1)) / warmup : decay(t - warmup));
}

function makeDecay(baseLr: number, c: ScheduleConfig, warmup: number): LrSchedule {
  switch (c.kind) {
    case 'constant':
      return () => baseLr;
    case 'step': {
      const size = c.stepSize ?? 0;
      const gamma = c.gamma ?? 0.1;
      if (!Number.isInteger(size) || size < 1) throw new ConfigError(`Invalid step size: ${size} (use a whole number of steps >= 1)`);
      checkFactor(gamma);
      return (t) => baseLr * gamma ** Math.floor(t / size);
    }
    case 'exponential': {
      const gamma = c.gamma ?? 0.999;
      checkFactor(gamma);
      return (t) => baseLr * gamma ** t;
    }
    case 'cosine': {
      const total = c.totalSteps ?? 0;
      const minLr = c.minLr ?? 0;
      if (!Number.isInteger(total) || total <= warmup) {
        throw new ConfigError(`Invalid cosine length: ${total} steps (must exceed the ${warmup} warm-up steps)`);
      }
      if (!(minLr >= 0 && minLr <= baseLr)) throw new ConfigError(`Invalid minimum learning rate: ${minLr} (use 0..${baseLr})`);
      const span = total - warmup;
      return (t) => minLr + 0.5 * (baseLr - minLr) * (1 + Math.cos((Math.PI * Math.min(t, span)) / span));
    }
    default:
      throw new ConfigError(`unknown schedule "${String(c.kind)}" (use ${SCHEDULE_KINDS.join(', ')})`);
  }
}

function checkFactor(gamma: number): void {
  if (!(gamma > 0 && gamma <= 1)) throw new ConfigError(`Invalid decay factor: ${gamma} (use a number in (0, 1])`);
}

export function checkPositive(what: string, v: number): void {
  if (!(Number.isFinite(v) && v > 0)) throw new ConfigError(`Invalid ${what}: ${v} (use a finite number > 0)`);
}

export function checkWhole(what: string, v: number): void {
  if (!Number.isInteger(v) || v < 0) throw new ConfigError(`Invalid ${what}: ${v} (use a whole number >= 0)`);
}
