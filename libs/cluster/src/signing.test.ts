import { createHmac } from 'node:crypto';
import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import { MessageSigner, SIGNATURE_BYTES } from './signing.js';

const SECRET = 'correct horse battery staple';
const signer = new MessageSigner(Buffer.from(SECRET));

/** The signature written out by hand: HMAC-SHA256 of the kind, a NUL, then each part as uint32 LE length + bytes. */
function byHand(secret: string, kind: string, parts: Uint8Array[]): Buffer {
  const chunks: Uint8Array[] = [Buffer.from(`${kind}\0`)];
  for (const p of parts) chunks.push(Buffer.from([p.length & 0xff, (p.length >> 8) & 0xff, (p.length >> 16) & 0xff, p.length >>> 24]), p);
  return createHmac('sha256', secret).update(Buffer.concat(chunks)).digest();
}

describe('MessageSigner', () => {
  it('signs the kind and the length-prefixed parts with HMAC-SHA256', () => {
    const parts = [Buffer.from('gradq:q:run:r1:params:4'), Buffer.alloc(300, 7)];
    const signature = signer.sign('params', parts);
    expect(signature).toHaveLength(SIGNATURE_BYTES);
    expect(signature.equals(byHand(SECRET, 'params', parts))).toBe(true);
    expect(signer.sign('params', ['gradq:q:run:r1:params:4', parts[1]]).equals(signature)).toBe(true); // a string is its UTF-8
  });

  it('verifies its own signatures', () => {
    const parts = ['a job', new Uint8Array([1, 2, 3])];
    expect(signer.verify('shard-job', signer.sign('shard-job', parts), parts)).toBe(true);
  });

  it.each([
    ['another secret', () => new MessageSigner(Buffer.from(`${SECRET}!`)).sign('result', ['abc'])],
    ['another kind', () => signer.sign('params', ['abc'])],
    ['other bytes', () => signer.sign('result', ['abd'])],
    ['the same bytes split into other parts', () => signer.sign('result', ['ab', 'c'])],
    ['a cut signature', () => signer.sign('result', ['abc']).subarray(0, 31)],
    ['no signature', () => new Uint8Array(0)],
  ])('refuses a signature made with %s', (_what, made) => {
    expect(signer.verify('result', made(), ['abc'])).toBe(false);
  });

  it('refuses a flipped bit anywhere in the signature', () => {
    const good = signer.sign('result', ['abc']);
    for (let i = 0; i < good.length; i++) {
      const bad = Buffer.from(good);
      bad[i] ^= 1;
      expect(signer.verify('result', bad, ['abc'])).toBe(false);
    }
  });

  it('never shows its secret', () => {
    expect(JSON.stringify(signer)).not.toContain('horse');
    expect(inspect(signer, { showHidden: true, depth: 5 })).not.toContain('horse');
    expect(inspect(signer, { showHidden: true, depth: 5 })).not.toContain(Buffer.from(SECRET).toString('hex').slice(0, 8));
  });

  it('refuses an empty secret', () => {
    expect(() => new MessageSigner(new Uint8Array(0))).toThrow(/empty/);
  });
});
