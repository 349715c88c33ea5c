/**
 * Training diverged: the summed gradient of a step holds a value that is not finite. A run outcome, not a bug nor
 * bad input: the command reports it in one line with the step and exits with its own code.
 */
export class DivergedError extends Error {
  override name = 'DivergedError';

  constructor(
    readonly step: number,
    readonly index: number,
    readonly value: number,
  ) {
    super(`step ${step}: gradient ${value} at index ${index}; training diverged (try a lower learning rate)`);
  }
}
