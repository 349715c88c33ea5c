import { bytesIntoFloats, firstNonFinite, floatBytesView } from '@gradq/nn';
import { InvalidMessageError } from './invalid-message-error.js';
import { SkippedBulk } from './resp-reply-parser.js';
import type { TensorConnection } from './tensor-connection.js';

// How parameters travel through Redis: the raw little-endian float32 bytes, nothing else (the key names the
// version). Gradients travel in result messages (result-message.ts).

/**
 * θ as the bytes to SET. On little-endian machines this is a view of `params`, which TensorConnection writes to
 * its socket as it is: the caller must await the write before changing the parameters (the coordinator does: the
 * optimizer runs after the step).
 */
export function encodeParams(params: Float32Array): Buffer {
  const bytes = floatBytesView(params);
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength); // a Buffer: ioredis (tests, tools) sends other views as text
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

  constructor(private readonly tensors: Pick<TensorConnection, 'get'>) {}

  async fetchInto(key: string, into: Float32Array): Promise<void> {
    if (this.busy) throw new Error(`ParamsFetcher: ${key} asked for while another fetch is in flight (its buffer is reused)`);
    this.busy = true;
    try {
      const expected = into.length * 4;
      const bytes = await this.tensors.get(key, (length) => {
        if (length !== expected) return 'skip';
        if (this.received.byteLength < expected) this.received = new Uint8Array(expected);
        return this.received;
      });
      decodeParamsInto(bytes, into, key);
    } finally {
      this.busy = false;
    }
  }
}

/** Copies parameters read from Redis into `into` after checking length and finiteness; on error `into` is untouched. */
export function decodeParamsInto(bytes: Uint8Array | SkippedBulk | null, into: Float32Array, key: string): void {
  if (bytes === null) throw new InvalidMessageError(`${key}: missing (expired, or the run was cleaned up)`);
  if (bytes instanceof SkippedBulk || bytes.byteLength !== into.length * 4) {
    throw new InvalidMessageError(`${key}: ${bytes.length} bytes, expected ${into.length * 4} (${into.length} float32)`);
  }
  if (scratch.length < into.length) scratch = new Float32Array(into.length);
  const values = scratch.subarray(0, into.length);
  bytesIntoFloats(bytes, values);
  const bad = firstNonFinite(values);
  if (bad >= 0) throw new InvalidMessageError(`${key}: parameter ${bad} is ${values[bad]}`);
  into.set(values);
}
