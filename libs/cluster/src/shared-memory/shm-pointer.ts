import { SLOT_NAME } from './shm-slots.js';

/**
 * What Redis holds instead of a tensor that travels through shared memory: `GQSHM1 <dir> <slot> <length>` in ASCII,
 * at most MAX_POINTER_BYTES. A tensor (θ's raw float32 bytes, a result message starting with "GQR2"/"GQS2") of that
 * size and with that start is not one gradq writes through Redis when shared memory is on, and what a pointer
 * names is checked before it is followed (checkSharedDir, SLOT_NAME, the reader's length limit).
 */
export interface ShmPointer {
  dir: string;
  slot: string;
  length: number;
}

const MAGIC = 'GQSHM1 ';
const MAGIC_BYTES = Buffer.from(MAGIC, 'latin1');
export const MAX_POINTER_BYTES = 160;

export function encodePointer(p: ShmPointer): Buffer {
  return Buffer.from(`${MAGIC}${p.dir} ${p.slot} ${p.length}`, 'latin1');
}

/** The pointer in `bytes`, or undefined when they are not one (any other value, passed on as it is). */
export function decodePointer(bytes: Uint8Array): ShmPointer | undefined {
  if (bytes.byteLength > MAX_POINTER_BYTES || bytes.byteLength < MAGIC_BYTES.byteLength) return undefined;
  for (let i = 0; i < MAGIC_BYTES.byteLength; i++) if (bytes[i] !== MAGIC_BYTES[i]) return undefined;
  const [dir, slot, length, ...rest] = Buffer.from(bytes.buffer, bytes.byteOffset + MAGIC.length, bytes.byteLength - MAGIC.length)
    .toString('latin1')
    .split(' ');
  const n = Number(length);
  if (rest.length > 0 || !dir?.startsWith('/') || !SLOT_NAME.test(slot ?? '') || !/^[0-9]{1,10}$/.test(length ?? '') || n > 2 ** 31) {
    return undefined;
  }
  return { dir, slot, length: n };
}
