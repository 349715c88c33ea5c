import { expect } from 'vitest';
import { InvalidMessageError } from '../invalid-message-error.js';

/** The message of the InvalidMessageError that `fn` throws (fails the test if it throws nothing or something else). */
export function invalidMessage(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(InvalidMessageError);
    return (e as Error).message;
  }
  throw new Error('expected an InvalidMessageError, nothing was thrown');
}
