import { paramsSha256 } from '@gradq/nn';
import { pack } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { encodeResultMessage, readGradientInto, readResultMessage, ResultWriter } from './result-message.js';
import type { ShardFailure, ShardResult } from './shard-job.js';
import { MessageSigner, SIGNATURE_BYTES } from './signing.js';
import { invalidMessage as message } from './testing/invalid-message.js';

// Values whose bits matter: subnormals, -0, tiny and huge magnitudes.
const values = Float32Array.from({ length: 1000 }, (_, i) => Math.sin(i) * 1e-3 * (i + 1));
values.set([-0, 1e-45, -3.4e38, 3.4e38, 1.1754942e-38], 0);
const result: ShardResult = {
  v: 4, run: 'r1', step: 5, shard: 2, through: 2, attempt: 1, codec: 'none', count: 16, lossSum: 30.25, correct: 9, worker: 'w', fetchMs: 1, computeMs: 2, uploadMs: 0.5,
}; // prettier-ignore
const failure: ShardFailure = { v: 2, run: 'r1', step: 5, shard: 2, attempt: 1, worker: 'w', error: 'θ missing' };

/** The bytes as ioredis may hand them over: a Buffer at an odd offset inside a larger allocation. */
function unaligned(bytes: Uint8Array): Buffer {
  const big = Buffer.alloc(bytes.byteLength + 3, 0xee);
  big.set(bytes, 1);
  return big.subarray(1, 1 + bytes.byteLength);
}

function roundTrip(bytes: Uint8Array, length = values.length): Float32Array {
  const into = new Float32Array(length);
  readGradientInto(readResultMessage(bytes).gradient, into, 'step 5 shard 2');
  return into;
}

describe('result messages', () => {
  it.each([
    ['a Buffer', (b: Buffer) => b],
    ['a Buffer at an odd offset', unaligned],
  ])('round-trip header and gradient bit for bit from %s', (_n, as) => {
    const bytes = as(encodeResultMessage(result, values));
    expect(readResultMessage(bytes).header).toEqual(result);
    const back = roundTrip(bytes);
    expect(paramsSha256(back)).toBe(paramsSha256(values));
    expect(Object.is(back[0], -0)).toBe(true);
  });
  it('put the gradient at a 4-byte boundary whatever the header length', () => {
    for (const worker of ['a', 'ab', 'abc', 'abcd']) {
      const bytes = encodeResultMessage({ ...result, worker }, values);
      expect((bytes.byteLength - values.byteLength) % 4).toBe(0);
      expect(readResultMessage(bytes).header.worker).toBe(worker);
      expect(paramsSha256(roundTrip(bytes))).toBe(paramsSha256(values));
    }
  });
  it('carry a failure as a header without gradient', () => {
    const read = readResultMessage(encodeResultMessage(failure));
    expect(read.header).toEqual(failure);
    expect(read.gradient.byteLength).toBe(0);
  });
  it('are written by a ResultWriter into one reused buffer, each valid until the next write', () => {
    const writer = new ResultWriter();
    const first = writer.write(result, values);
    const copy = Buffer.from(first);
    const second = writer.write({ ...result, shard: 3 }, values);
    expect(second.buffer).toBe(first.buffer);
    expect(readResultMessage(second).header.shard).toBe(3);
    expect(readResultMessage(copy).header.shard).toBe(2);
    expect(writer.write(result, values).equals(copy)).toBe(true);
  });
  it('grow the writer’s buffer for a larger gradient', () => {
    const writer = new ResultWriter();
    writer.write(result, values.subarray(0, 10));
    expect(paramsSha256(roundTrip(writer.write(result, values)))).toBe(paramsSha256(values));
  });
});

describe('reading a gradient', () => {
  const bytes = encodeResultMessage(result, values);
  it.each([999, 1001])('rejects 1000 values where %i are expected, with both lengths in the message', (length) =>
    expect(message(() => roundTrip(bytes, length))).toBe(`step 5 shard 2: gradient of 1000 values, expected ${length} values`),
  );
  it('rejects a gradient that is not whole float32 values, in bytes', () => {
    const cut = encodeResultMessage(result, values).subarray(0, -1);
    expect(message(() => roundTrip(cut))).toBe('step 5 shard 2: gradient of 3999 bytes, expected 1000 values');
  });
  it.each([
    [Number.NaN, 0],
    [Number.NaN, 42],
    [Number.POSITIVE_INFINITY, 42],
    [Number.NEGATIVE_INFINITY, 999],
  ])('rejects %s at index %i, naming the index', (v, index) => {
    const bad = values.slice();
    bad[index] = v;
    expect(message(() => roundTrip(encodeResultMessage(result, bad)))).toBe(`step 5 shard 2: gradient value ${index} is ${v}`);
  });
});

describe('reading garbage', () => {
  const good = encodeResultMessage(result, values);
  /** A message whose header needs padding, with `byte` in the padding. */
  const padded = (byte: number): Buffer => {
    for (const worker of ['a', 'ab', 'abc', 'abcd']) {
      const b = encodeResultMessage({ ...result, worker });
      const length = b.readUInt32LE(4);
      if ((8 + length) % 4 !== 0) return b.fill(byte, 8 + length, 8 + length + 1);
    }
    throw new Error('no header length needed padding');
  };
  const withLength = (length: number): Buffer => {
    const b = Buffer.from(good);
    b.writeUInt32LE(length, 4);
    return b;
  };
  it.each([
    ['no bytes', new Uint8Array(0), /of 0 bytes is too short/],
    ['raw parameter bytes', new Uint8Array(values.buffer), /starts with 0x[0-9a-f]{8}, not "GQR2"/],
    ['a msgpack map', pack({ ...result }), /not "GQR2"/],
    ['a header longer than the message', withLength(60000), /header of 60000 bytes does not fit in \d+ bytes/],
    ['a header length of 2^32 - 1', withLength(0xffffffff), /header of 4294967295 bytes \(at most 65536\)/],
    ['a header length of 2^32 - 4', withLength(0xfffffffc), /header of 4294967292 bytes \(at most 65536\)/],
    ['non-zero padding', padded(1), /padding is not zero/],
    [
      'a header that is not msgpack',
      Buffer.concat([good.subarray(0, 8), Buffer.from([0xc1, 0xc1, 0xc1, 0xc1])])
        .fill(4, 4, 5)
        .fill(0, 5, 8),
      /header is not msgpack/,
    ],
    ['a header that is a number', Buffer.concat([good.subarray(0, 4), Buffer.from([1, 0, 0, 0, 5, 0, 0, 0])]), /header is 5, not a map/],
    [
      'a header that is an array',
      Buffer.concat([good.subarray(0, 4), Buffer.from([3, 0, 0, 0]), pack([1, 2]), Buffer.alloc(1)]),
      /header is \[1,2\], not a map/,
    ],
  ])('rejects %s', (_n, bytes, pattern) => expect(message(() => readResultMessage(bytes))).toMatch(pattern));
});

describe('signed result messages', () => {
  const signer = new MessageSigner(Buffer.from('the run’s shared secret, 32 bytes'));
  const other = new MessageSigner(Buffer.from('another run’s secret, also long'));
  const signed = encodeResultMessage(result, values, signer);
  const unsigned = encodeResultMessage(result, values);

  it('are the unsigned message with magic "GQS2" and the HMAC of everything before it at the end', () => {
    expect(signed.byteLength).toBe(unsigned.byteLength + SIGNATURE_BYTES);
    expect(signed.subarray(0, 4).toString('latin1')).toBe('GQS2');
    expect(signed.subarray(4, unsigned.byteLength).equals(unsigned.subarray(4))).toBe(true);
    const body = signed.subarray(0, unsigned.byteLength);
    expect(signer.verify('result', signed.subarray(unsigned.byteLength), [body])).toBe(true);
  });
  it.each([
    ['a Buffer', (b: Buffer) => b],
    ['a Buffer at an odd offset', unaligned],
  ])('round-trip header and gradient bit for bit from %s', (_n, as) => {
    const read = readResultMessage(as(signed), undefined, signer);
    expect(read.header).toEqual(result);
    const into = new Float32Array(values.length);
    readGradientInto(read.gradient, into, 'test');
    expect(paramsSha256(into)).toBe(paramsSha256(values));
  });
  it('carry a failure report, signed', () => {
    const read = readResultMessage(encodeResultMessage(failure, undefined, signer), undefined, signer);
    expect([read.header, read.gradient.byteLength]).toEqual([failure, 0]);
  });
  it('are written by a signing ResultWriter, each signed, in its reused buffer', () => {
    const writer = new ResultWriter(signer);
    writer.write(result, values);
    const second = writer.write({ ...result, shard: 3 }, values.subarray(0, 10));
    expect(readResultMessage(second, undefined, signer).header.shard).toBe(3);
  });

  /** `signed` with the byte at `index` changed. */
  const flipped = (index: number): Buffer => {
    const b = Buffer.from(signed);
    b[index] ^= 0x10;
    return b;
  };
  const gradientAt = signed.byteLength - SIGNATURE_BYTES - values.byteLength;
  it.each([
    ['an unsigned message', unsigned, /result message is not signed \(from a worker without the run’s secret, or forged\)/],
    ['a message signed with another secret', encodeResultMessage(result, values, other), /bad signature/],
    ['a changed header byte', flipped(12), /bad signature/],
    ['a changed gradient byte', flipped(gradientAt + 100), /bad signature/],
    ['a changed signature byte', flipped(signed.byteLength - 1), /bad signature/],
    ['a changed header length', flipped(4), /bad signature/],
    ['a message cut short', signed.subarray(0, signed.byteLength - 4), /bad signature/],
    ['a signature alone', signed.subarray(signed.byteLength - SIGNATURE_BYTES), /of 32 bytes is not a signed result message/],
    ['garbage', Buffer.alloc(100, 0x47), /of 100 bytes is not a signed result message/],
    ['nothing', Buffer.alloc(0), /of 0 bytes is not a signed result message/],
  ])('are refused when the run has a secret: %s', (_n, bytes, pattern) =>
    expect(message(() => readResultMessage(bytes, undefined, signer))).toMatch(pattern),
  );
  it('are refused by a run without a secret, which says so', () =>
    expect(message(() => readResultMessage(signed))).toMatch(/result message is signed, but this run has no secret/));
  it('leave unsigned messages as they were: no signature, magic "GQR2"', () => {
    expect(unsigned.subarray(0, 4).toString('latin1')).toBe('GQR2');
    expect(unsigned.byteLength % 4).toBe(0);
    expect(unsigned.byteLength).toBe(8 + unsigned.readUInt32LE(4) + ((4 - (unsigned.readUInt32LE(4) % 4)) % 4) + values.byteLength);
  });
});
