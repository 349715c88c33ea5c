import { firstNonFinite, paramsSha256 } from '@gradq/nn';
import { describe, expect, it } from 'vitest';
import { InvalidMessageError } from './invalid-message-error.js';
import { decodeGradient, decodeParamsInto, encodeGradient, encodeParams } from './tensor-codec.js';

const values = Float32Array.from({ length: 1000 }, (_, i) => Math.sin(i) * 1e-3 * (i + 1));
const header = { run: 'r1', step: 5, shard: 2, attempt: 1, count: 16 };
const expected = { run: 'r1', step: 5, shard: 2, count: 16 };

function message(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(InvalidMessageError);
    return (e as Error).message;
  }
  throw new Error('no error');
}

describe('parameters', () => {
  it('round-trip bit for bit, also from a Buffer', () => {
    const into = new Float32Array(values.length);
    decodeParamsInto(Buffer.from(encodeParams(values)), into, 'k');
    expect(paramsSha256(into)).toBe(paramsSha256(values));
  });
  it('rejects a missing key', () =>
    expect(message(() => decodeParamsInto(null, new Float32Array(3), 'k:params:3'))).toMatch(/k:params:3: missing/));
  it('rejects the wrong length', () =>
    expect(message(() => decodeParamsInto(encodeParams(values), new Float32Array(999), 'k'))).toMatch(/4000 bytes, expected 3996/));
  it('rejects a NaN', () => {
    const bad = values.slice();
    bad[7] = Number.NaN;
    expect(message(() => decodeParamsInto(encodeParams(bad), new Float32Array(1000), 'k'))).toMatch(/parameter 7 is NaN/);
  });
});

describe('gradients', () => {
  const encoded = encodeGradient(header, values);
  it('round-trip bit for bit, also from a Buffer', () => {
    const back = decodeGradient(Buffer.from(encoded), expected, 1000, 'k');
    expect(paramsSha256(back)).toBe(paramsSha256(values));
    expect(firstNonFinite(back)).toBe(-1);
  });
  it.each([
    ['another run', { run: 'r0' }, /run is "r0", expected "r1"/],
    ['another step', { step: 4 }, /step is 4, expected 5/],
    ['another shard', { shard: 3 }, /shard is 3, expected 2/],
    ['another count', { count: 15 }, /count is 15, expected 16/],
  ])('reject an envelope for %s', (_n, patch, pattern) => {
    expect(message(() => decodeGradient(encodeGradient({ ...header, ...patch }, values), expected, 1000, 'k'))).toMatch(pattern);
  });
  it('reject the wrong length', () =>
    expect(message(() => decodeGradient(encoded, expected, 1001, 'k'))).toMatch(/gradient of 1000 values, expected 1001/));
  it.each([Number.NaN, Number.POSITIVE_INFINITY])('reject %s with its index', (v) => {
    const bad = values.slice();
    bad[42] = v;
    expect(message(() => decodeGradient(encodeGradient(header, bad), expected, 1000, 'k'))).toMatch(
      new RegExp(`gradient value 42 is ${v}`),
    );
  });
  it('reject a missing key', () => expect(message(() => decodeGradient(null, expected, 1000, 'k'))).toMatch(/gradient missing/));
  it('reject garbage', () =>
    expect(message(() => decodeGradient(Uint8Array.from([0xc1, 1, 2]), expected, 1000, 'k'))).toMatch(/not a gradient envelope/));
});
