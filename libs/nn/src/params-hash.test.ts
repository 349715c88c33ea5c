import { describe, expect, it } from 'vitest';
import { paramsDigest, paramsSha256 } from './params-hash.js';

describe('params fingerprints', () => {
  it('paramsDigest: the same for the same bits, another for any one word changed (even or odd), length or sign of zero', () => {
    const params = Float32Array.from({ length: 1001 }, (_, i) => Math.sin(i) * 0.1);
    const digest = paramsDigest(params);
    expect(digest).toMatch(/^[0-9a-f]{16}$/);
    expect(paramsDigest(params.slice())).toBe(digest);
    // A view at an offset reads its own values.
    const padded = new Float32Array(1003);
    padded.set(params, 2);
    expect(paramsDigest(padded.subarray(2))).toBe(digest);
    const seen = new Set([digest]);
    for (const i of [0, 1, 500, 999, 1000]) {
      const changed = params.slice();
      new Int32Array(changed.buffer)[i] ^= 1; // its lowest bit
      seen.add(paramsDigest(changed));
    }
    const zeros = new Float32Array(4);
    seen.add(paramsDigest(zeros));
    zeros[3] = -0;
    seen.add(paramsDigest(zeros));
    seen.add(paramsDigest(params.subarray(0, 1000)));
    expect(seen.size).toBe(9);
  });

  it('paramsSha256: SHA-256 of the little-endian bytes (Python: hashlib.sha256(struct.pack("<f", 1.0)))', () => {
    expect(paramsSha256(Float32Array.of(1))).toBe('e00e5eb9444182f352323374ef4e08ebcb784725fdd4fd612d7730540b3e0c8c');
  });
});
