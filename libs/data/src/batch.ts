import { unitFloats } from '@gradq/nn';
import { DataError } from './data-error.js';
import type { Split } from './split.js';

/** The batch's pixels, gathered row by row before they become floats in one pass; grows, then is reused. */
let staging = new Uint8Array(0);

/**
 * Writes samples indices[start..end) of `split` into x ((end - start) x features, row-major, pixel / 255 as
 * float32) and their labels into y. Allocates nothing once its staging buffer fits the largest batch.
 */
export function gatherBatch(split: Split, indices: ArrayLike<number>, start: number, end: number, x: Float32Array, y: Uint8Array): void {
  const { features, pixels, labels, count } = split;
  const rows = end - start;
  if (!Number.isInteger(start) || !Number.isInteger(end) || start < 0 || rows < 0 || end > indices.length) {
    throw new RangeError(`gatherBatch: range [${start}, ${end}) is not within the ${indices.length} indices`);
  }
  if (x.length < rows * features || y.length < rows) {
    throw new RangeError(
      `gatherBatch: ${rows} samples need x of ${rows * features} floats and y of ${rows} labels, got ${x.length} and ${y.length}`,
    );
  }
  const size = rows * features;
  if (staging.length < size) staging = new Uint8Array(size);
  for (let r = 0; r < rows; r++) {
    const sample = indices[start + r];
    if (!(sample >= 0 && sample < count && Number.isInteger(sample))) {
      throw new RangeError(`gatherBatch: index ${sample} at position ${start + r} is outside the ${count} samples`);
    }
    staging.set(pixels.subarray(sample * features, (sample + 1) * features), r * features);
    y[r] = labels[sample];
  }
  unitFloats(staging.subarray(0, size), x.subarray(0, size));
}

/** Names used in limitSamples' error, e.g. { flag: '--train-samples', samples: 'training samples of mnist' }. */
export interface SampleLimitNames {
  flag: string;
  samples: string;
}

/** A view of the first n samples of `split` (no copy); throws DataError unless n is a whole number in [1, count]. */
export function limitSamples(split: Split, n: number, names: SampleLimitNames = { flag: 'sample limit', samples: 'samples' }): Split {
  if (!Number.isInteger(n) || n < 1) {
    throw new DataError(`${names.flag} ${n} is not valid: expected a whole number from 1 to ${split.count} (the ${names.samples})`);
  }
  if (n > split.count) {
    throw new DataError(`${names.flag} ${n} exceeds the ${split.count} ${names.samples}; use at most ${split.count}`);
  }
  return {
    ...split,
    count: n,
    pixels: split.pixels.subarray(0, n * split.features),
    labels: split.labels.subarray(0, n),
  };
}
