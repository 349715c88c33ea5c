import { bytesIntoFloats, firstNonFinite, floatBytesView } from '@gradq/nn';
import { InvalidMessageError } from './invalid-message-error.js';
import { SkippedBulk } from './resp-reply-parser.js';
import type { TensorConnection } from './tensor-connection.js';

/**
 * How parameters travel through Redis: the raw little-endian float32 bytes, nothing else (the key names the
 * version). Gradients travel in result messages (result-message.ts).
 */
/**
 * θ as the bytes to SET. On little-endian machines this is a view of `params` (ioredis then copies it once into
 * the command it writes; TensorConnection writes it as it is): the caller must await the write before changing the
 * parameters, since a command waiting to be sent still refers to them (the coordinator does: the optimizer runs
 * after the step).
 */
export function encodeParams(params: Float32Array): Buffer {
  const bytes = floatBytesView(params);
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength); // a Buffer: ioredis sends other views as text
}

// Where θ is checked before it is copied into the model, and where its bytes arrive from Redis; both grow to the
// largest model seen, then are reused.
let scratch = new Float32Array(0);
let received = new Uint8Array(0);

/**
 * GETs θ from `key` into `into` (see decodeParamsInto). Its bytes land in a reused buffer, and a value of the
 * wrong length is not even read into memory.
 */
export async function fetchParamsInto(tensors: Pick<TensorConnection, 'get'>, key: string, into: Float32Array): Promise<void> {
  const expected = into.length * 4;
  const bytes = await tensors.get(key, (length) => {
    if (length !== expected) return 'skip';
    if (received.byteLength < expected) received = new Uint8Array(expected);
    return received;
  });
  decodeParamsInto(bytes, into, key);
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
