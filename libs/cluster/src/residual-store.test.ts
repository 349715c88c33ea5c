import { describe, expect, it } from 'vitest';
import { decodeResidual, encodeResidual, readResidual } from './residual-store.js';
import { SkippedBulk } from './resp-reply-parser.js';
import { MessageSigner } from './signing.js';
import type { TensorConnection } from './tensor-connection.js';

const signer = new MessageSigner(Buffer.from('s'.repeat(16)));
const residual = Uint8Array.from({ length: 40 }, (_, i) => i * 3);
const KEY = 'gradq:q:run:r1:residual:4:1';

describe('stored residuals', () => {
  it('read back what was written, unsigned and signed', () => {
    expect(decodeResidual(encodeResidual(residual, KEY), 40, KEY)).toEqual(residual);
    expect(decodeResidual(encodeResidual(residual, KEY, signer), 40, KEY, signer)).toEqual(residual);
  });
  it.each([
    ['a missing key', null, /residual:4:1: residual missing/],
    ['the wrong size', encodeResidual(residual.subarray(1), KEY), /residual of 39 bytes, expected 40/],
    ['a value too large to read', new SkippedBulk(1 << 20), /residual of 1048576 bytes, expected 40/],
  ])('refuse %s', (_, stored, pattern) => {
    expect(() => decodeResidual(stored, 40, KEY)).toThrow(pattern);
  });
  it('read one from Redis allocating only its expected size: a value of another length is skipped unread and refused', async () => {
    const allocated: Array<number | 'skip'> = [];
    /** A GET whose value is `stored`: it reads the bytes only into a buffer the caller gave. */
    const tensors = (stored: Uint8Array): Pick<TensorConnection, 'get'> => ({
      get: async (_key, into) => {
        const buffer = into(stored.length);
        allocated.push(buffer === 'skip' ? buffer : buffer.length);
        if (buffer === 'skip') return new SkippedBulk(stored.length);
        buffer.set(stored);
        return buffer;
      },
    });
    expect(await readResidual(tensors(encodeResidual(residual, KEY, signer)), KEY, 40, signer)).toEqual(residual);
    const huge = new Uint8Array(1 << 24); // 16 MiB where 72 bytes are expected: never copied
    await expect(readResidual(tensors(huge), KEY, 40, signer)).rejects.toThrow(
      /residual of 16777216 bytes, expected 72 \(not what a worker of this run writes\)/,
    );
    await expect(readResidual(tensors(encodeResidual(residual, KEY)), KEY, 40, signer)).rejects.toThrow(/40 bytes, expected 72/);
    expect(allocated).toEqual([72, 'skip', 'skip']);
  });
  it.each([
    ['an unsigned residual', encodeResidual(residual, KEY), /residual of 40 bytes, expected 72/],
    ['one signed for another key (step, shard or run)', encodeResidual(residual, 'gradq:q:run:r1:residual:3:1', signer), /bad signature/],
    ['one signed with another secret', encodeResidual(residual, KEY, new MessageSigner(Buffer.from('t'.repeat(16)))), /bad signature/],
  ])('with a secret, refuse %s', (_, stored, pattern) => {
    expect(() => decodeResidual(stored, 40, KEY, signer)).toThrow(pattern);
  });
});
