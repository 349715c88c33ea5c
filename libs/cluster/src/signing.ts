import { createHmac, timingSafeEqual } from 'node:crypto';

/** Bytes of a signature: one HMAC-SHA256 tag. */
export const SIGNATURE_BYTES = 32;

/**
 * What a signature vouches for. The kind is signed with the message, so that a signature made for one kind of
 * message (a job, θ, a result) is never valid for another.
 */
export type SignedKind = 'shard-job' | 'round-job' | 'lease-job' | 'clock' | 'params' | 'result' | 'residual';

/**
 * Signs and checks the messages of a run with the secret that its coordinator and workers share: HMAC-SHA256 over
 * the kind and the message's parts, each part preceded by its length (so that no two lists of parts sign the
 * same bytes). Whoever can write to Redis but does not hold the secret can then no longer make a worker compute a
 * job, a worker use a θ, or the coordinator use a result that the run did not make.
 */
export class MessageSigner {
  readonly #key: Buffer; // private: never printed, never in JSON

  constructor(secret: Uint8Array) {
    if (secret.byteLength === 0) throw new Error('MessageSigner: the secret is empty');
    this.#key = Buffer.from(secret);
  }

  /** The signature of `parts` as a message of `kind`. */
  sign(kind: SignedKind, parts: ReadonlyArray<Uint8Array | string>): Buffer {
    const hmac = createHmac('sha256', this.#key).update(kind).update('\0');
    const length = Buffer.alloc(4);
    for (const part of parts) {
      const bytes = typeof part === 'string' ? Buffer.from(part, 'utf8') : part;
      length.writeUInt32LE(bytes.byteLength, 0);
      hmac.update(length).update(bytes);
    }
    return hmac.digest();
  }

  /** Whether `signature` is the signature of `parts` as a message of `kind` (compared in constant time). */
  verify(kind: SignedKind, signature: Uint8Array, parts: ReadonlyArray<Uint8Array | string>): boolean {
    if (signature.byteLength !== SIGNATURE_BYTES) return false;
    return timingSafeEqual(this.sign(kind, parts), signature);
  }
}
