/** Something read back from Redis (a job, a result, a tensor) failed validation; the message says what and why. */
export class InvalidMessageError extends Error {
  override readonly name = 'InvalidMessageError';
}
