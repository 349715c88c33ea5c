import { describe, expect, it } from 'vitest';
import { gatherBatch, limitSamples } from './batch.js';
import { DataError } from './data-error.js';
import type { Split } from './split.js';

/** 4 samples of 2x2 pixels; sample s has pixels 60s, 60s+1, 60s+2, 255 and label s. */
function tinySplit(): Split {
  const pixels = new Uint8Array(16);
  for (let s = 0; s < 4; s++) pixels.set([60 * s, 60 * s + 1, 60 * s + 2, 255], 4 * s);
  return { count: 4, rows: 2, cols: 2, features: 4, pixels, labels: Uint8Array.of(0, 1, 2, 3) };
}

describe('gatherBatch', () => {
  it('writes the selected rows as float32(pixel / 255) and their labels', () => {
    const split = tinySplit();
    const x = new Float32Array(8);
    const y = new Uint8Array(2);
    gatherBatch(split, [0, 3, 2, 1], 1, 3, x, y);
    const expected = [180, 181, 182, 255, 120, 121, 122, 255].map((v) => Math.fround(v / 255));
    expect(Array.from(x)).toEqual(expected);
    expect(Array.from(y)).toEqual([3, 2]);
  });

  it('maps every byte value to exactly Math.fround(v / 255)', () => {
    const pixels = Uint8Array.from({ length: 256 }, (_, v) => v);
    const split: Split = { count: 1, rows: 16, cols: 16, features: 256, pixels, labels: Uint8Array.of(0) };
    const x = new Float32Array(256);
    gatherBatch(split, [0], 0, 1, x, new Uint8Array(1));
    for (let v = 0; v < 256; v++) expect(x[v]).toBe(Math.fround(v / 255));
    expect([x[0], x[255]]).toEqual([0, 1]);
  });

  it('gathers MNIST-sized rows (the WebAssembly path, several passes) in order and leaves the rest of x alone', () => {
    const features = 784;
    const n = 600;
    const pixels = Uint8Array.from({ length: n * features }, (_, i) => (i * 37 + (i >> 9)) % 256);
    const split: Split = { count: n, rows: 28, cols: 28, features, pixels, labels: Uint8Array.from({ length: n }, (_, s) => s % 10) };
    const order = Uint32Array.from({ length: n }, (_, i) => (i * 7919) % n); // a permutation: 7919 is prime
    const rows = 300; // more than one pass of 256 rows
    const x = new Float32Array((rows + 1) * features).fill(-1);
    const y = new Uint8Array(rows);
    gatherBatch(split, order, 5, 5 + rows, x, y);
    for (let r = 0; r < rows; r++) {
      const sample = order[5 + r];
      for (let f = 0; f < features; f++) expect(x[r * features + f]).toBe(Math.fround(pixels[sample * features + f] / 255));
      expect(y[r]).toBe(sample % 10);
    }
    expect(x.subarray(rows * features).every((v) => v === -1)).toBe(true);
  });

  it('rejects buffers too small for the batch', () => {
    expect(() => gatherBatch(tinySplit(), [0, 1], 0, 2, new Float32Array(7), new Uint8Array(2))).toThrow(
      'gatherBatch: 2 samples need x of 8 floats and y of 2 labels, got 7 and 2',
    );
  });

  it('rejects a sample index outside the split', () => {
    expect(() => gatherBatch(tinySplit(), [0, 4], 0, 2, new Float32Array(8), new Uint8Array(2))).toThrow(
      'gatherBatch: index 4 at position 1 is outside the 4 samples',
    );
  });

  it('rejects a range beyond the index array', () => {
    expect(() => gatherBatch(tinySplit(), [0, 1], 1, 3, new Float32Array(8), new Uint8Array(2))).toThrow(RangeError);
  });
});

describe('limitSamples', () => {
  const names = { samples: 'training samples of mnist', about: 'trainSamples' };

  it('returns a view of the first n samples that shares memory with the split', () => {
    const split = tinySplit();
    const head = limitSamples(split, 2, names);
    expect([head.count, head.pixels.length, head.labels.length]).toEqual([2, 8, 2]);
    expect(head.pixels.buffer).toBe(split.pixels.buffer);
    expect(Array.from(head.labels)).toEqual([0, 1]);
  });

  it('accepts n equal to the sample count', () => {
    expect(limitSamples(tinySplit(), 4, names).count).toBe(4);
  });

  it('rejects n above the sample count, quoting both and naming the setting', () => {
    const error = new DataError('sample limit 70000 exceeds the 60000 training samples of mnist; use at most 60000', {
      about: 'trainSamples',
    });
    expect(() => limitSamples({ ...tinySplit(), count: 60000 }, 70000, names)).toThrow(error);
  });

  it.each([0, -3, 1.5, Number.NaN])('rejects n = %s as not a whole number from 1', (n) => {
    expect(() => limitSamples(tinySplit(), n, names)).toThrow(
      new DataError(`sample limit ${n} is not valid: expected a whole number from 1 to 4 (the training samples of mnist)`, {
        about: 'trainSamples',
      }),
    );
  });
});
