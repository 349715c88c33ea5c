import { paramsSha256 } from '@gradq/nn';
import { pack } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { encodeResultMessage, readGradientInto, readResultMessage, ResultWriter } from './result-message.js';
import type { ShardFailure, ShardResult } from './shard-job.js';
import { invalidMessage as message } from './testing/invalid-message.js';

// Values whose bits matter: subnormals, -0, tiny and huge magnitudes.
const values = Float32Array.from({ length: 1000 }, (_, i) => Math.sin(i) * 1e-3 * (i + 1));
values.set([-0, 1e-45, -3.4e38, 3.4e38, 1.1754942e-38], 0);
const result: ShardResult = {
  v: 2, run: 'r1', step: 5, shard: 2, attempt: 1, count: 16, lossSum: 30.25, correct: 9, worker: 'w', fetchMs: 1, computeMs: 2, uploadMs: 0.5,
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
