import { bytesIntoFloats, firstNonFinite, floatBytesView } from '@gradq/nn';
import { InvalidMessageError } from './invalid-message-error.js';
import { SkippedBulk } from './resp-reply-parser.js';
import { SIGNATURE_BYTES, type MessageSigner } from './signing.js';
import type { TensorConnection } from './tensor-connection.js';

// How parameters travel through Redis: the raw little-endian float32 bytes, nothing else (the key names the
// version). With a shared secret, 32 more bytes follow them: the HMAC-SHA256 (MessageSigner, kind 'params') of the
// key and the bytes, so that θ of one step or run cannot stand in for another's. Gradients travel in result
// messages (result-message.ts).

/** The key θ is stored under and the run's signer, for a signed θ. */
export interface ParamsSignature {
  key: string;
  signer: MessageSigner;
}

/**
 * θ as the bytes to SET. Unsigned, on little-endian machines, this is a view of `params`, which TensorConnection
 * writes to its socket as it is: the caller must await the write before changing the parameters (the coordinator
 * does: the optimizer runs after the step). Signed, it is a copy with the signature after it.
 */
export function encodeParams(params: Float32Array, signature?: ParamsSignature): Buffer {
  const bytes = floatBytesView(params);
  const view = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength); // a Buffer: ioredis (tests, tools) sends other views as text
  if (!signature) return view;
  return Buffer.concat([view, signature.signer.sign('params', [signature.key, view])]);
}

// Where θ is checked before it is copied into the model; grows to the largest model seen, then is reused.
let scratch = new Float32Array(0);

/**
 * GETs θ into a model's parameters (see decodeParamsInto). The bytes land in a buffer of the fetcher's own,
 * reused, so it takes one fetch at a time; a value of the wrong length is not even read into memory.
 */
export class ParamsFetcher {
  private received = new Uint8Array(0);
  private busy = false;

  /** With `signer`, only θ it signed is accepted. */
  constructor(
    private readonly tensors: Pick<TensorConnection, 'get'>,
    private readonly signer?: MessageSigner,
  ) {}

  async fetchInto(key: string, into: Float32Array): Promise<void> {
    if (this.busy) throw new Error(`ParamsFetcher: ${key} asked for while another fetch is in flight (its buffer is reused)`);
    this.busy = true;
    try {
      const expected = into.length * 4 + (this.signer ? SIGNATURE_BYTES : 0);
      const bytes = await this.tensors.get(key, (length) => {
        if (length !== expected) return 'skip';
        if (this.received.byteLength < expected) this.received = new Uint8Array(expected);
        return this.received;
      });
      decodeParamsInto(bytes, into, key, this.signer);
    } finally {
      this.busy = false;
    }
  }
}

/**
 * Copies parameters read from Redis into `into` after checking length, signature (with `signer`: only θ it signed
 * for `key` is accepted) and finiteness; on error `into` is untouched.
 */
export function decodeParamsInto(bytes: Uint8Array | SkippedBulk | null, into: Float32Array, key: string, signer?: MessageSigner): void {
  if (bytes === null) throw new InvalidMessageError(`${key}: missing (expired, or the run was cleaned up)`);
  const size = into.length * 4;
  const expected = size + (signer ? SIGNATURE_BYTES : 0);
  if (bytes instanceof SkippedBulk || bytes.byteLength !== expected) {
    const hint =
      signer && bytes.length === size
        ? ': not signed (written by a coordinator without the secret, or forged)'
        : !signer && bytes.length === size + SIGNATURE_BYTES
          ? ': signed θ? this worker has no secret (give it the run’s secret)'
          : '';
    throw new InvalidMessageError(
      `${key}: ${bytes.length} bytes, expected ${expected} (${into.length} float32${signer ? ' and a signature' : ''})${hint}`,
    );
  }
  const data = bytes.subarray(0, size);
  if (signer && !signer.verify('params', bytes.subarray(size), [key, data])) {
    throw new InvalidMessageError(`${key}: bad signature (made with another secret, for another key, or changed since)`);
  }
  if (scratch.length < into.length) scratch = new Float32Array(into.length);
  const values = scratch.subarray(0, into.length);
  bytesIntoFloats(data, values);
  const bad = firstNonFinite(values);
  if (bad >= 0) throw new InvalidMessageError(`${key}: parameter ${bad} is ${values[bad]}`);
  into.set(values);
}
