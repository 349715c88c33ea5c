import { createHash } from 'node:crypto';
import { DataError } from './data-error.js';

/** The SHA-256 of `bytes` as 64 lowercase hex digits. */
export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Throws DataError naming `file` and both hashes unless the SHA-256 of `decompressed` is `expected`. */
export function verifySha256(decompressed: Uint8Array, expected: string, file: string): void {
  const found = sha256Hex(decompressed);
  if (found !== expected) {
    throw new DataError(
      `${file}: SHA-256 of the decompressed content is ${found}, expected ${expected}; the file is corrupt or not the official one: delete it and download again`,
    );
  }
}
