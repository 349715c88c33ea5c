import { createHash } from 'node:crypto';
import { floatsToBytes } from './kernels/float-bytes.js';

/** SHA-256 (hex) of the parameter buffer's little-endian bytes: the fingerprint of a trained model. */
export function paramsSha256(params: Float32Array): string {
  return createHash('sha256').update(floatsToBytes(params)).digest('hex');
}
