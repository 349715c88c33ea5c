import { paramsSha256 } from '@gradq/nn';
import { describe, expect, it } from 'vitest';
import { invalidMessage as message } from './testing/invalid-message.js';
import { SkippedBulk } from './resp-reply-parser.js';
import { MessageSigner, SIGNATURE_BYTES } from './signing.js';
import { decodeParamsInto, encodeParams, ParamsFetcher } from './tensor-codec.js';
import type { TensorConnection } from './tensor-connection.js';

/** A connection stand-in whose GET offers `stored` (or nothing) to the reader's buffer choice, as the parser does. */
function holding(stored: Uint8Array | null): Pick<TensorConnection, 'get'> & { offered: number[] } {
  const offered: number[] = [];
  return {
    offered,
    get: async (_key, into) => {
      if (stored === null) return null;
      offered.push(stored.length);
      const target = into(stored.length);
      if (target === 'skip') return new SkippedBulk(stored.length);
      target.set(stored);
      return target.subarray(0, stored.length);
    },
  };
}

// Values whose bits matter: subnormals, -0, tiny and huge magnitudes.
const values = Float32Array.from({ length: 1000 }, (_, i) => Math.sin(i) * 1e-3 * (i + 1));
values.set([-0, 1e-45, -3.4e38, 3.4e38, 1.1754942e-38], 0);

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
  it('encode as 4 little-endian bytes per value, in a Buffer (ioredis sends other views as text)', () => {
    const bytes = encodeParams(Float32Array.of(1, -2));
    expect(Buffer.isBuffer(bytes)).toBe(true);
    expect([...bytes]).toEqual([0, 0, 0x80, 0x3f, 0, 0, 0, 0xc0]);
  });
  it('encode a subarray as its own values only', () => {
    expect([...encodeParams(Float32Array.of(7, 1, 9).subarray(1, 2))]).toEqual([0, 0, 0x80, 0x3f]);
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

describe('ParamsFetcher', () => {
  it('GETs θ into the model bit for bit', async () => {
    const into = new Float32Array(values.length);
    await new ParamsFetcher(holding(encodeParams(values))).fetchInto('k', into);
    expect(paramsSha256(into)).toBe(paramsSha256(values));
  });
  it('skips a value of the wrong length without reading it, and says how long it was', async () => {
    const into = new Float32Array(999).fill(2);
    const error = await new ParamsFetcher(holding(encodeParams(values))).fetchInto('k:params:1', into).catch((e: unknown) => e);
    expect((error as Error).message).toBe('k:params:1: 4000 bytes, expected 3996 (999 float32)');
    expect(into.every((x) => x === 2)).toBe(true);
  });
  it('rejects a missing key and a non-finite value as decodeParamsInto does', async () => {
    await expect(new ParamsFetcher(holding(null)).fetchInto('k:params:2', new Float32Array(3))).rejects.toThrow(/^k:params:2: missing/);
    const bad = values.slice();
    bad[3] = Number.NaN;
    await expect(new ParamsFetcher(holding(encodeParams(bad))).fetchInto('k', new Float32Array(1000))).rejects.toThrow(
      'parameter 3 is NaN',
    );
  });
  it('takes one fetch at a time: its buffer is reused', async () => {
    const fetcher = new ParamsFetcher(holding(encodeParams(values)));
    const first = fetcher.fetchInto('k:1', new Float32Array(1000));
    await expect(fetcher.fetchInto('k:2', new Float32Array(1000))).rejects.toThrow('k:2 asked for while another fetch is in flight');
    await first;
    await fetcher.fetchInto('k:3', new Float32Array(1000)); // free again
  });
});

describe('signed parameters', () => {
  const signer = new MessageSigner(Buffer.from('the run’s shared secret, 32 bytes'));
  const key = 'gradq:q:run:r1:params:4';
  const signed = encodeParams(values, { key, signer });

  it('are the raw bytes followed by the HMAC of the key and the bytes', () => {
    const raw = encodeParams(values);
    expect(signed.byteLength).toBe(raw.byteLength + SIGNATURE_BYTES);
    expect(signed.subarray(0, raw.byteLength).equals(raw)).toBe(true);
    expect(signer.verify('params', signed.subarray(raw.byteLength), [key, raw])).toBe(true);
  });
  it.each(asReceived)('round-trip bit for bit from %s', (_n, as) => {
    const into = new Float32Array(values.length);
    decodeParamsInto(as(signed), into, key, signer);
    expect(paramsSha256(into)).toBe(paramsSha256(values));
  });
  it('are fetched by a signing ParamsFetcher', async () => {
    const into = new Float32Array(values.length);
    await new ParamsFetcher(holding(signed), signer).fetchInto(key, into);
    expect(paramsSha256(into)).toBe(paramsSha256(values));
  });

  const flipped = (index: number): Buffer => {
    const b = Buffer.from(signed);
    b[index] ^= 0x01;
    return b;
  };
  it.each([
    ['unsigned θ', key, encodeParams(values), /4000 bytes, expected 4032 \(1000 float32 and a signature\): not signed/],
    ['θ signed with another secret', key, encodeParams(values, { key, signer: new MessageSigner(Buffer.from('x'.repeat(16))) }), /bad sig/],
    ['θ of another step', 'gradq:q:run:r1:params:5', signed, /params:5: bad signature/],
    ['a changed parameter byte', key, flipped(2000), /bad signature/],
    ['a changed signature byte', key, flipped(4031), /bad signature/],
  ])('are refused: %s, and the target is left untouched', (_n, at, bytes, pattern) => {
    const into = new Float32Array(1000).fill(2);
    expect(message(() => decodeParamsInto(bytes, into, at, signer))).toMatch(pattern);
    expect(into.every((x) => x === 2)).toBe(true);
  });
  it('are refused by a ParamsFetcher with the secret when unsigned, unread', async () => {
    const stored = holding(encodeParams(values));
    await expect(new ParamsFetcher(stored, signer).fetchInto(key, new Float32Array(1000))).rejects.toThrow(/: not signed/);
  });
  it('are refused by a worker without a secret, which says why', () => {
    expect(message(() => decodeParamsInto(signed, new Float32Array(1000), key))).toMatch(
      /4032 bytes, expected 4000 .*this worker has no secret/,
    );
  });
});
