import { describe, expect, it } from 'vitest';
import { Rng } from '@gradq/nn';
import { sampleShift, shiftImages } from './augment.js';

describe('sampleShift', () => {
  it('is a pure function of (seed, epoch, sample) within [-max, max]', () => {
    const seen = new Set<string>();
    for (let s = 0; s < 500; s++) {
      const [dy, dx] = sampleShift(7, 3, s, 2);
      expect(sampleShift(7, 3, s, 2)).toEqual([dy, dx]);
      for (const d of [dy, dx]) expect(d >= -2 && d <= 2 && Number.isInteger(d)).toBe(true);
      seen.add(`${dy},${dx}`);
    }
    expect(seen.size).toBe(25); // every shift of the 5×5 occurs
  });

  it('differs between epochs and seeds', () => {
    const shifts = (seed: number, epoch: number) =>
      Array.from({ length: 50 }, (_, s) => sampleShift(seed, epoch, s, 2).join(',')).join(' ');
    expect(shifts(7, 3)).not.toBe(shifts(7, 4));
    expect(shifts(7, 3)).not.toBe(shifts(8, 3));
  });

  it('draws dy, then dx, from Rng.derive(seed, epoch, sample, SHFT) (the contract of shards.ts)', () => {
    for (const [seed, epoch, sample, max] of [
      [7, 3, 11, 2],
      [1, 0, 59_999, 8],
      [2 ** 40, 5, 3, 1],
    ]) {
      const rng = Rng.derive(seed, epoch, sample, 0x53484654);
      const span = 2 * max + 1;
      expect(sampleShift(seed, epoch, sample, max)).toEqual([rng.nextInt(span) - max, rng.nextInt(span) - max]);
    }
  });

  it('never shifts with max 0', () => expect(sampleShift(1, 2, 3, 0)).toEqual([0, 0]));
});

describe('shiftImages', () => {
  it('moves each image by its own shift, filling with zeros (checked pixel by pixel against the definition)', () => {
    const [rows, cols, count] = [5, 7, 6];
    const samples = [11, 3, 40, 2, 99, 17];
    const x = Float32Array.from({ length: count * rows * cols }, (_, i) => 1 + i);
    const original = x.slice();
    shiftImages(x, count, rows, cols, samples, 5, 1, 2, new Float32Array(rows * cols));
    for (let r = 0; r < count; r++) {
      const [dy, dx] = sampleShift(5, 1, samples[r], 2);
      for (let i = 0; i < rows; i++) {
        for (let j = 0; j < cols; j++) {
          const [si, sj] = [i - dy, j - dx];
          const want = si >= 0 && si < rows && sj >= 0 && sj < cols ? original[r * rows * cols + si * cols + sj] : 0;
          expect(x[r * rows * cols + i * cols + j]).toBe(want);
        }
      }
    }
  });
});
