import { ConfigError, type ScheduleConfig } from '@gradq/nn';

/** A schedule spec that does not parse or gives values out of range. */
class ScheduleError extends ConfigError {
  constructor(message: string) {
    super(message, { about: 'schedule' });
  }
}

/**
 * Turns a schedule spec and a warm-up (both in epochs) into a step-based schedule config:
 * `constant`, `cosine` (to 0 over the run), `step:EPOCHS:GAMMA`, `exponential:GAMMA` (per epoch).
 */
export function parseScheduleSpec(spec: string, warmupEpochs: number, stepsPerEpoch: number, totalSteps: number): ScheduleConfig {
  const warmupSteps = Math.round(warmupEpochs * stepsPerEpoch);
  const [kind, ...args] = spec.split(':');
  const num = (s: string | undefined, what: string): number => {
    const v = s === undefined || s.trim() === '' ? Number.NaN : Number(s);
    if (!Number.isFinite(v)) throw new ScheduleError(`schedule ${spec}: ${what} "${s ?? ''}" is not a number`);
    return v;
  };
  const arity = (n: number, form: string): void => {
    if (args.length !== n) throw new ScheduleError(`schedule ${spec}: expected ${form}`);
  };
  switch (kind) {
    case 'constant':
      arity(0, 'constant');
      return { kind: 'constant', warmupSteps };
    case 'cosine':
      arity(0, 'cosine');
      if (warmupSteps >= totalSteps) {
        throw new ConfigError(
          `warm-up of ${warmupEpochs} epochs: ${warmupSteps} warm-up steps leave nothing of the ${totalSteps} steps for cosine`,
          {
            about: 'warmup',
          },
        );
      }
      return { kind: 'cosine', warmupSteps, totalSteps };
    case 'step': {
      arity(2, 'step:EPOCHS:GAMMA, e.g. step:3:0.5');
      const epochs = num(args[0], 'EPOCHS');
      const stepSize = Math.round(epochs * stepsPerEpoch);
      if (stepSize < 1) throw new ScheduleError(`schedule ${spec}: EPOCHS ${args[0]} is less than one step`);
      return { kind: 'step', warmupSteps, stepSize, gamma: num(args[1], 'GAMMA') };
    }
    case 'exponential': {
      arity(1, 'exponential:GAMMA, e.g. exponential:0.9');
      const perEpoch = num(args[0], 'GAMMA');
      if (!(perEpoch > 0 && perEpoch <= 1)) throw new ScheduleError(`schedule ${spec}: GAMMA ${args[0]} is not in (0, 1]`);
      return { kind: 'exponential', warmupSteps, gamma: perEpoch ** (1 / stepsPerEpoch) };
    }
    default:
      throw new ScheduleError(`schedule ${spec}: unknown schedule (use constant, cosine, step:EPOCHS:GAMMA or exponential:GAMMA)`);
  }
}
