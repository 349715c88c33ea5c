import { bytesIntoFloats, bytesToFloats, firstNonFinite, floatsToBytes } from '@gradq/nn';
import { Packr } from 'msgpackr';
import { InvalidMessageError } from './invalid-message-error.js';

/**
 * How tensors travel through Redis. Parameters: the raw little-endian float32 bytes, nothing else (the key
 * names the version). Gradients: a msgpackr envelope naming run, step, shard and attempt around the raw bytes,
 * so that a gradient read back can be checked against the job it should answer.
 */
export interface GradientHeader {
  run: string;
  step: number;
  shard: number;
  attempt: number;
  count: number;
}

const packr = new Packr({ useRecords: false });

export function encodeParams(params: Float32Array): Uint8Array {
  return floatsToBytes(params);
}

/** Copies parameters read from Redis into `into`, after checking length and finiteness. */
export function decodeParamsInto(bytes: Uint8Array | null, into: Float32Array, key: string): void {
  if (bytes === null) throw new InvalidMessageError(`${key}: missing (expired, or the run was cleaned up)`);
  if (bytes.byteLength !== into.length * 4) {
    throw new InvalidMessageError(`${key}: ${bytes.byteLength} bytes, expected ${into.length * 4} (${into.length} float32)`);
  }
  const values = bytesToFloats(bytes);
  const bad = firstNonFinite(values);
  if (bad >= 0) throw new InvalidMessageError(`${key}: parameter ${bad} is ${values[bad]}`);
  into.set(values);
}

export function encodeGradient(header: GradientHeader, grad: Float32Array): Uint8Array {
  return packr.pack({ ...header, data: floatsToBytes(grad) });
}

/**
 * Decodes a gradient envelope and checks it answers `expected` (run, step, shard, count) with `length` finite
 * values; returns the values (a copy). Anything else is an InvalidMessageError: the caller recomputes the shard.
 */
export function decodeGradient(
  bytes: Uint8Array | null,
  expected: Omit<GradientHeader, 'attempt'>,
  length: number,
  key: string,
): Float32Array {
  return decodeGradientInto(bytes, expected, new Float32Array(length), key);
}

/**
 * decodeGradient into a buffer the caller reuses (no allocation per step). When it throws, `into` may hold part
 * of the rejected gradient: it is scratch, never the model.
 */
export function decodeGradientInto(
  bytes: Uint8Array | null,
  expected: Omit<GradientHeader, 'attempt'>,
  into: Float32Array,
  key: string,
): Float32Array {
  const length = into.length;
  if (bytes === null) throw new InvalidMessageError(`${key}: gradient missing`);
  let doc: Record<string, unknown>;
  try {
    doc = packr.unpack(bytes) as Record<string, unknown>;
  } catch (e) {
    throw new InvalidMessageError(`${key}: not a gradient envelope (${(e as Error).message})`);
  }
  if (typeof doc !== 'object' || doc === null) throw new InvalidMessageError(`${key}: not a gradient envelope`);
  for (const field of ['run', 'step', 'shard', 'count'] as const) {
    if (doc[field] !== expected[field]) {
      throw new InvalidMessageError(`${key}: ${field} is ${JSON.stringify(doc[field])}, expected ${JSON.stringify(expected[field])}`);
    }
  }
  const data = doc.data;
  if (!(data instanceof Uint8Array)) throw new InvalidMessageError(`${key}: gradient bytes missing`);
  if (data.byteLength !== length * 4) {
    throw new InvalidMessageError(`${key}: gradient of ${data.byteLength / 4} values, expected ${length}`);
  }
  bytesIntoFloats(data, into);
  const bad = firstNonFinite(into);
  if (bad >= 0) throw new InvalidMessageError(`${key}: gradient value ${bad} is ${into[bad]}`);
  return into;
}
