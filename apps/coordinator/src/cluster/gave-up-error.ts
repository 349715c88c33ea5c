import { RunStoppedError } from '@gradq/train';

/** A step waited too long without a valid result and with no responsive worker (see StepGather's watchdog). */
export class GaveUpError extends RunStoppedError {
  override name = 'GaveUpError';
}
