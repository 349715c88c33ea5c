import { InvalidMessageError } from './invalid-message-error.js';

// The field checks of every JSON message the cluster exchanges (shard and round jobs, results, failure reports):
// one set of predicates and one loop, so that each message's table of fields is all that differs.

/** Whether a field's value is acceptable. */
export type Check = (v: unknown) => boolean;

/** A whole number >= 0. */
export const int: Check = (v) => Number.isSafeInteger(v) && (v as number) >= 0;
/** A whole number >= 1. */
export const pos: Check = (v) => int(v) && (v as number) >= 1;
/** A finite number. */
export const num: Check = (v) => typeof v === 'number' && Number.isFinite(v);
/** A duration in milliseconds: finite, >= 0. */
export const ms: Check = (v) => num(v) && (v as number) >= 0;
/** A name or key: 1 to 256 characters. */
export const str: Check = (v) => typeof v === 'string' && v.length > 0 && v.length <= 256;

/** `data` as a T after checking each field of `fields`; InvalidMessageError naming `what` and the first bad field. */
export function checkFields<T>(what: string, data: unknown, fields: Record<string, Check>): T {
  if (typeof data !== 'object' || data === null || Array.isArray(data)) {
    throw new InvalidMessageError(`${what}: expected an object, got ${JSON.stringify(data)?.slice(0, 80)}`);
  }
  const record = data as Record<string, unknown>;
  for (const [key, check] of Object.entries(fields)) {
    if (!check(record[key])) throw new InvalidMessageError(`${what}: field ${key} is ${JSON.stringify(record[key])?.slice(0, 80)}`);
  }
  return record as T;
}

/** Throws InvalidMessageError naming `what` and the first of `keys` whose value in `message` is not `expected`'s. */
export function checkExpected<T, K extends keyof T>(what: string, message: T, expected: Pick<T, K>, keys: readonly K[]): void {
  for (const key of keys) {
    if (message[key] !== expected[key]) {
      throw new InvalidMessageError(
        `${what}: ${String(key)} is ${JSON.stringify(message[key])}, expected ${JSON.stringify(expected[key])}`,
      );
    }
  }
}
