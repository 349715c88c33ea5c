import { endianness } from 'node:os';

const LITTLE_ENDIAN = endianness() === 'LE';

/** The little-endian bytes of a Float32Array (a copy, so the result owns its memory). */
export function floatsToBytes(values: Float32Array): Uint8Array {
  const bytes = new Uint8Array(values.byteLength);
  floatsIntoBytes(values, bytes);
  return bytes;
}

/** Writes the little-endian bytes of `values` into `target` (the same byte length) without allocating. */
export function floatsIntoBytes(values: Float32Array, target: Uint8Array): void {
  if (target.byteLength !== values.byteLength)
    throw new RangeError(`${target.byteLength} bytes do not hold ${values.length} float32 values`);
  target.set(new Uint8Array(values.buffer, values.byteOffset, values.byteLength));
  if (!LITTLE_ENDIAN) swap32(target);
}

/**
 * The little-endian bytes of `values`: a view of their memory on a little-endian machine (no copy: it changes
 * with them), else a copy in that byte order.
 */
export function floatBytesView(values: Float32Array): Uint8Array {
  return LITTLE_ENDIAN ? new Uint8Array(values.buffer, values.byteOffset, values.byteLength) : floatsToBytes(values);
}

/** Float32Array from little-endian bytes (copied, so the bytes may come from any offset). */
export function bytesToFloats(bytes: Uint8Array): Float32Array {
  if (bytes.byteLength % 4 !== 0) throw new RangeError(`${bytes.byteLength} bytes is not a whole number of float32 values`);
  const copy = new Uint8Array(bytes); // a real copy: Buffer.prototype.slice would return a view of a pooled buffer
  if (!LITTLE_ENDIAN) swap32(copy);
  return new Float32Array(copy.buffer, 0, copy.byteLength / 4);
}

/** Copies little-endian float32 bytes into `into` (same length), from any byte offset, without allocating. */
export function bytesIntoFloats(bytes: Uint8Array, into: Float32Array): void {
  if (bytes.byteLength !== into.byteLength) throw new RangeError(`${bytes.byteLength} bytes do not fill ${into.length} float32 values`);
  const target = new Uint8Array(into.buffer, into.byteOffset, into.byteLength);
  target.set(bytes);
  if (!LITTLE_ENDIAN) swap32(target);
}

function swap32(bytes: Uint8Array): void {
  for (let i = 0; i < bytes.length; i += 4) {
    const a = bytes[i], b = bytes[i + 1]; // prettier-ignore
    bytes[i] = bytes[i + 3];
    bytes[i + 1] = bytes[i + 2];
    bytes[i + 2] = b;
    bytes[i + 3] = a;
  }
}
