import { RunStoppedError } from '@gradq/train';

/** The signals that stop a cluster run cleanly (see ClusterRun). */
export type StopSignal = 'SIGINT' | 'SIGTERM';

/** The coordinator got SIGINT or SIGTERM: the run stopped before `step`. */
export class InterruptedError extends RunStoppedError {
  override name = 'InterruptedError';

  constructor(
    readonly signal: StopSignal,
    step: number,
  ) {
    super(`interrupted by ${signal} before step ${step}`);
  }
}
