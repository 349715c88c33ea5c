import { InvalidMessageError } from './invalid-message-error.js';
import { SkippedBulk } from './resp-reply-parser.js';
import { SIGNATURE_BYTES, type MessageSigner } from './signing.js';
import type { TensorConnection } from './tensor-connection.js';

// How a shard's error-feedback residual (--compress int8) is stored between steps: under a key naming the run, the
// step, the shard and the attempt that wrote it (RunKeys.residual), as its bytes (libs/train's RESIDUAL_CODEC),
// with a run's secret followed by the HMAC-SHA256 (kind 'residual') of the key and the bytes. A worker writes it just
// before it pushes the shard's result, on the same connection, so that a result in the list implies its residual
// in Redis; the next step's job names the key of the residual of the attempt whose result the coordinator kept.
// Each attempt has a key of its own: an attempt whose result was rejected (or a late original after a retry) writes
// beside the kept one, never over it. Every worker that computes one attempt writes the same bytes (they are a
// function of θ, the shard and the residual it read), so a duplicate delivery of a job changes nothing.

/** The bytes to SET for a residual under `key`. */
export function encodeResidual(residual: Uint8Array, key: string, signer?: MessageSigner): Buffer {
  const bytes = Buffer.from(residual.buffer, residual.byteOffset, residual.byteLength);
  return signer ? Buffer.concat([bytes, signer.sign('residual', [key, bytes])]) : Buffer.from(bytes);
}

/** Bytes stored for a residual of `size` bytes (encodeResidual): the residual, then the signature with a secret. */
export function storedResidualBytes(size: number, signed: boolean): number {
  return size + (signed ? SIGNATURE_BYTES : 0);
}

/**
 * The residual under `key` (`size` bytes), read and checked (decodeResidual). What Redis holds is untrusted: a value
 * of any length but storedResidualBytes is skipped unread, never allocated, and refused with its length.
 */
export async function readResidual(
  tensors: Pick<TensorConnection, 'get'>,
  key: string,
  size: number,
  signer?: MessageSigner,
): Promise<Uint8Array> {
  const expected = storedResidualBytes(size, signer !== undefined);
  const stored = await tensors.get(key, (length) => (length === expected ? new Uint8Array(length) : 'skip'));
  return decodeResidual(stored, size, key, signer);
}

/** The residual read from `key` (`size` bytes), after checking its length and signature; InvalidMessageError otherwise. */
export function decodeResidual(stored: Uint8Array | SkippedBulk | null, size: number, key: string, signer?: MessageSigner): Uint8Array {
  if (stored === null) throw new InvalidMessageError(`${key}: residual missing (expired, or Redis lost it)`);
  const expected = storedResidualBytes(size, signer !== undefined);
  if (stored instanceof SkippedBulk || stored.byteLength !== expected) {
    throw new InvalidMessageError(
      `${key}: residual of ${stored.length} bytes, expected ${expected} (not what a worker of this run writes)`,
    );
  }
  const bytes = stored.subarray(0, size);
  if (signer && !signer.verify('residual', stored.subarray(size), [key, bytes])) {
    throw new InvalidMessageError(`${key}: residual has a bad signature (made with another secret, or changed since)`);
  }
  return new Uint8Array(bytes); // a copy of its own (not a view of a reused read buffer)
}
