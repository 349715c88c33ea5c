import { describe, expect, it } from 'vitest';
import { clockFields, readClockEntry } from './clock-entry.js';
import { InvalidMessageError } from './invalid-message-error.js';
import { MessageSigner } from './signing.js';

const CLOCK = 'gradq:q:r1:clock';
const signer = new MessageSigner(Buffer.from('the run secret'));
const entry = (fields: string[]) => ({ id: '1-0', fields });

describe('clock entries', () => {
  it('read back what was written, signed or not', () => {
    for (const e of [
      { step: 0, set: 0, last: false },
      { step: 123456789012345, set: 7, last: true },
    ]) {
      expect(readClockEntry(entry(clockFields(e, CLOCK)), CLOCK)).toEqual(e);
      expect(readClockEntry(entry(clockFields(e, CLOCK, signer)), CLOCK, signer)).toEqual(e);
    }
    expect(clockFields({ step: 4, set: 2, last: false }, CLOCK)).toEqual(['step', '4', 'set', '2', 'last', '0']);
  });

  it.each([
    [['step', '4', 'set', '2'], /expected the fields step, set, last/],
    [['set', '2', 'step', '4', 'last', '0'], /expected the fields/],
    [['step', '', 'set', '2', 'last', '0'], /whole numbers/],
    [['step', '1e3', 'set', '2', 'last', '0'], /whole numbers/],
    [['step', '0x10', 'set', '2', 'last', '0'], /whole numbers/],
    [['step', '-1', 'set', '2', 'last', '0'], /whole numbers/],
    [['step', '1234567890123456', 'set', '2', 'last', '0'], /whole numbers/],
    [['step', '4', 'set', '2', 'last', 'yes'], /last must be 0 or 1/],
    [['step', '4', 'set', '2', 'last', '0', 'extra', 'x'], /expected the fields/],
  ])('refuses %j, quoting it', (fields, why) => {
    const read = () => readClockEntry(entry(fields), CLOCK);
    expect(read).toThrow(InvalidMessageError);
    expect(read).toThrow(why);
    expect(read).toThrow(JSON.stringify(fields[0]));
  });

  it('with the run’s secret: refuses an entry unsigned, signed with another secret, or signed for another clock', () => {
    const e = { step: 4, set: 2, last: false };
    expect(() => readClockEntry(entry(clockFields(e, CLOCK)), CLOCK, signer)).toThrow(/not signed with the run’s secret/);
    const other = new MessageSigner(Buffer.from('another secret'));
    expect(() => readClockEntry(entry(clockFields(e, CLOCK, other)), CLOCK, signer)).toThrow(/not signed/);
    expect(() => readClockEntry(entry(clockFields(e, 'gradq:q:r2:clock', signer)), CLOCK, signer)).toThrow(/not signed/);
    // A valid signature of another entry's fields does not carry over.
    const signed = clockFields(e, CLOCK, signer);
    signed[1] = '5';
    expect(() => readClockEntry(entry(signed), CLOCK, signer)).toThrow(/not signed/);
  });
});
