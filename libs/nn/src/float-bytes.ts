import { endianness } from 'node:os';

const LITTLE_ENDIAN = endianness() === 'LE';

/** The little-endian bytes of a Float32Array (a copy, so the result owns its memory). */
export function floatsToBytes(values: Float32Array): Uint8Array {
  const bytes = new Uint8Array(values.byteLength);
  new Float32Array(bytes.buffer).set(values);
  if (!LITTLE_ENDIAN) swap32(bytes);
  return bytes;
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
