import { describe, expect, it } from 'vitest';
import { DataError } from './data-error.js';
import { sha256Hex, verifySha256 } from './sha256.js';

const ABC = 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad';

describe('sha256', () => {
  it('hashes "abc" to the FIPS 180-2 test vector', () => {
    expect(sha256Hex(new TextEncoder().encode('abc'))).toBe(ABC);
  });

  it('accepts content with the expected hash', () => {
    expect(() => verifySha256(new TextEncoder().encode('abc'), ABC, 'f')).not.toThrow();
  });

  it('names the file and both hashes on a mismatch', () => {
    const expected = '0'.repeat(64);
    expect(() => verifySha256(new TextEncoder().encode('abc'), expected, 'mnist/x.gz')).toThrow(
      new DataError(
        `mnist/x.gz: SHA-256 of the decompressed content is ${ABC}, expected ${expected}; the file is corrupt or not the official one: delete it and download again`,
      ),
    );
  });
});
