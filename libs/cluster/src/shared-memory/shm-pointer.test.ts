import { describe, expect, it } from 'vitest';
import { decodePointer, encodePointer, MAX_POINTER_BYTES } from './shm-pointer.js';

describe('shared-memory pointers', () => {
  const pointer = { dir: '/dev/shm/gradq-Ab12Cd', slot: 'p.0123abcd.7.42', length: 4_793_000 };

  it('round-trips and stays short', () => {
    const bytes = encodePointer(pointer);
    expect(bytes.byteLength).toBeLessThanOrEqual(MAX_POINTER_BYTES);
    expect(decodePointer(bytes)).toEqual(pointer);
  });

  it.each([
    ['another value', 'GQR2 not a pointer'],
    ['a relative directory', 'GQSHM1 dev/shm/gradq-Ab12Cd p.0123abcd.7.42 10'],
    ['a slot name with a path in it', 'GQSHM1 /dev/shm/gradq-Ab12Cd ../../etc/passwd 10'],
    ['a length that is not a number', 'GQSHM1 /dev/shm/gradq-Ab12Cd p.0123abcd.7.42 -1'],
    ['a length beyond 2 GiB', 'GQSHM1 /dev/shm/gradq-Ab12Cd p.0123abcd.7.42 4294967296'],
    ['a field too many', 'GQSHM1 /dev/shm/gradq-Ab12Cd p.0123abcd.7.42 10 x'],
    ['a value longer than any pointer', `GQSHM1 /dev/shm/${'x'.repeat(200)} p.0123abcd.7.42 10`],
  ])('is not read from %s', (_what, text) => {
    expect(decodePointer(Buffer.from(text, 'latin1'))).toBeUndefined();
  });
});
