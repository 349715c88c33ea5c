import { InvalidMessageError } from './invalid-message-error.js';
import type { MessageSigner } from './signing.js';
import type { StreamEntry } from './tensor-connection.js';

/**
 * An entry of a run's clock (run-keys.ts), the stream by which the coordinator tells the holders of step leases
 * (lease-job.ts) what to compute: step `step` is announced for lease set `set` (θ_step is written), or, with
 * `last`, the set ends with that step (a lease of it was handed back or lost, or the run ended): a holder computes
 * the step if it still owes it, then ends its lease.
 */
export interface ClockEntry {
  step: number;
  set: number;
  last: boolean;
}

/** A clock entry's step and set: a whole number of at most 15 digits (Number's `1e3`, `0x10` or '' are not). */
const WHOLE = /^[0-9]{1,15}$/;

/**
 * The XADD fields of `entry` on clock `clock`: `step <t> set <s> last <0|1>`, and with the run's secret
 * `sig <hex>`, the signature of the three over the clock's key (so that an entry is valid on its own clock only).
 */
export function clockFields(entry: ClockEntry, clock: string, signer?: MessageSigner): string[] {
  const fields = ['step', String(entry.step), 'set', String(entry.set), 'last', entry.last ? '1' : '0'];
  if (signer) fields.push('sig', signer.sign('clock', [clock, ...fields]).toString('hex'));
  return fields;
}

/**
 * The ClockEntry an entry of clock `clock` holds, or InvalidMessageError saying what is wrong with it. With the
 * run's secret (`signer`), an entry without its valid signature is refused (anyone who can write to Redis can add
 * entries: a forged one must not end leases or make holders skip a step).
 */
export function readClockEntry(entry: StreamEntry, clock: string, signer?: MessageSigner): ClockEntry {
  const f = entry.fields;
  const shown = JSON.stringify(f.slice(0, 8)).slice(0, 200);
  const bad = (why: string): InvalidMessageError => new InvalidMessageError(`clock entry ${entry.id} ${shown}: ${why}`);
  if (f[0] !== 'step' || f[2] !== 'set' || f[4] !== 'last' || !(f.length === 6 || (f.length === 8 && f[6] === 'sig'))) {
    throw bad('expected the fields step, set, last (and sig)');
  }
  if (!WHOLE.test(f[1]) || !WHOLE.test(f[3])) throw bad('step and set must be whole numbers');
  if (f[5] !== '0' && f[5] !== '1') throw bad('last must be 0 or 1');
  if (
    signer &&
    !(f.length === 8 && /^[0-9a-f]{64}$/.test(f[7]) && signer.verify('clock', Buffer.from(f[7], 'hex'), [clock, ...f.slice(0, 6)]))
  ) {
    throw bad('not signed with the run’s secret');
  }
  return { step: Number(f[1]), set: Number(f[3]), last: f[5] === '1' };
}
