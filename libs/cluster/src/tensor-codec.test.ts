import { firstNonFinite, paramsSha256 } from '@gradq/nn';
import { pack } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { invalidMessage as message } from './testing/invalid-message.js';
import { decodeGradient, decodeParamsInto, encodeGradient, encodeParams } from './tensor-codec.js';

// Values whose bits matter: subnormals, -0, tiny and huge magnitudes.
const values = Float32Array.from({ length: 1000 }, (_, i) => Math.sin(i) * 1e-3 * (i + 1));
values.set([-0, 1e-45, -3.4e38, 3.4e38, 1.1754942e-38], 0);
const header = { run: 'r1', step: 5, shard: 2, attempt: 1, count: 16 };
const expected = { run: 'r1', step: 5, shard: 2, count: 16 };

/** The message of the InvalidMessageError that `fn` throws; fails the test if it throws nothing or another error. */

/** The bytes as ioredis' getBuffer may hand them over: a Buffer at an odd offset inside a larger allocation. */
function unalignedBuffer(bytes: Uint8Array): Buffer {
  const big = Buffer.alloc(bytes.byteLength + 3, 0xee);
  big.set(bytes, 1);
  return big.subarray(1, 1 + bytes.byteLength);
}

const asReceived: [string, (b: Uint8Array) => Uint8Array][] = [
  ['a Uint8Array', (b) => b],
  ['a Buffer', (b) => Buffer.from(b)],
  ['a Buffer at an odd offset', unalignedBuffer],
];

describe('parameters', () => {
  it('encode as 4 little-endian bytes per value', () => {
    expect(encodeParams(Float32Array.of(1, -2))).toEqual(Uint8Array.of(0, 0, 0x80, 0x3f, 0, 0, 0, 0xc0));
  });
  it.each(asReceived)('round-trip bit for bit from %s', (_n, as) => {
    const into = new Float32Array(values.length);
    decodeParamsInto(as(encodeParams(values)), into, 'k');
    expect(paramsSha256(into)).toBe(paramsSha256(values));
    expect(Object.is(into[0], -0)).toBe(true);
  });
  it('rejects a missing key, naming it', () =>
    expect(message(() => decodeParamsInto(null, new Float32Array(3), 'k:params:3'))).toMatch(/^k:params:3: missing/));
  it('rejects the wrong length', () =>
    expect(message(() => decodeParamsInto(encodeParams(values), new Float32Array(999), 'k'))).toMatch(/4000 bytes, expected 3996/));
  it.each([Number.NaN, Number.NEGATIVE_INFINITY])('rejects %s with its index and leaves the target untouched', (v) => {
    const bad = values.slice();
    bad[7] = v;
    const into = new Float32Array(1000).fill(2);
    expect(message(() => decodeParamsInto(encodeParams(bad), into, 'k'))).toMatch(new RegExp(`parameter 7 is ${v}`));
    expect(into.every((x) => x === 2)).toBe(true);
  });
});

describe('gradients', () => {
  const encoded = encodeGradient(header, values);
  it.each(asReceived)('round-trip bit for bit from %s', (_n, as) => {
    const back = decodeGradient(as(encoded), expected, 1000, 'k');
    expect(paramsSha256(back)).toBe(paramsSha256(values));
    expect(firstNonFinite(back)).toBe(-1);
  });
  it('round-trip whatever the header length (the bytes land at any offset in the envelope)', () => {
    for (const run of ['r', 'r1', 'r12', 'r123']) {
      const back = decodeGradient(encodeGradient({ ...header, run }, values), { ...expected, run }, 1000, 'k');
      expect(paramsSha256(back)).toBe(paramsSha256(values));
    }
  });
  it('returns a copy that does not alias the received bytes', () => {
    const bytes = Buffer.from(encoded);
    const back = decodeGradient(bytes, expected, 1000, 'k');
    back.fill(0);
    expect(paramsSha256(decodeGradient(bytes, expected, 1000, 'k'))).toBe(paramsSha256(values));
  });
  it('accepts an envelope from another attempt at the same shard', () => {
    expect(decodeGradient(encodeGradient({ ...header, attempt: 0 }, values), expected, 1000, 'k')).toHaveLength(1000);
  });
  it.each([
    ['another run', { run: 'r0' }, /run is "r0", expected "r1"/],
    ['another step', { step: 4 }, /step is 4, expected 5/],
    ['another shard', { shard: 3 }, /shard is 3, expected 2/],
    ['another count', { count: 15 }, /count is 15, expected 16/],
  ])('reject an envelope for %s', (_n, patch, pattern) => {
    expect(message(() => decodeGradient(encodeGradient({ ...header, ...patch }, values), expected, 1000, 'k'))).toMatch(pattern);
  });
  it.each([999, 1001])('reject a gradient of 1000 values where %i are expected, with both lengths in the message', (length) =>
    expect(message(() => decodeGradient(encoded, expected, length, 'k'))).toMatch(`gradient of 1000 values, expected ${length}`),
  );
  it.each([
    [Number.NaN, 0],
    [Number.NaN, 42],
    [Number.POSITIVE_INFINITY, 42],
    [Number.NEGATIVE_INFINITY, 999],
  ])('reject %s at index %i, naming the index', (v, index) => {
    const bad = values.slice();
    bad[index] = v;
    expect(message(() => decodeGradient(encodeGradient(header, bad), expected, 1000, 'k'))).toMatch(`gradient value ${index} is ${v}`);
  });
  it('reject a missing key, naming it', () =>
    expect(message(() => decodeGradient(null, expected, 1000, 'k:grad:5:2'))).toMatch(/^k:grad:5:2: gradient missing/));
  it.each([
    ['an unused msgpack byte', Uint8Array.from([0xc1, 1, 2])],
    ['no bytes', new Uint8Array(0)],
    ['a truncated envelope', encoded.subarray(0, 30)],
    ['an envelope with trailing bytes', Uint8Array.from([...encoded, 1, 2, 3])],
    ['raw parameter bytes', encodeParams(values)],
    ['a packed number', pack(5)],
    ['a packed null', pack(null)],
  ])('reject garbage: %s', (_n, bytes) =>
    expect(message(() => decodeGradient(bytes, expected, 1000, 'k'))).toMatch(/^k: not a gradient envelope/),
  );
  it.each([
    ['a packed array', pack([1, 2]), /run is undefined/],
    ['an envelope without data', pack({ ...expected }), /gradient bytes missing/],
    ['an envelope with text as data', pack({ ...expected, data: 'abc' }), /gradient bytes missing/],
  ])('reject %s', (_n, bytes, pattern) => expect(message(() => decodeGradient(bytes, expected, 1000, 'k'))).toMatch(pattern));
});
