import { deriveSeed, Rng } from '@gradq/nn';

/** The largest shift accepted, in pixels each way. */
export const MAX_SHIFT = 8;

/** Keys the shift stream apart from every other stream derived from the run's seed (epochOrder's: seed, epoch). */
const SHIFT_KEY = 0x53484654; // 'SHFT'

/**
 * The shift of one training sample, part of the contract in shards.ts when a run augments its data: sample `sample`
 * (its index in the training split) in epoch `epoch` of a run with seed `seed` moves by (dy, dx), each a whole number
 * in [-max, max], drawn from Rng.derive(seed, epoch, sample, SHIFT_KEY). A pure function: the in-process trainer and
 * every worker shift a sample the same way whoever computes its shard, so a run stays bit-identical for any number
 * of workers.
 */
export function sampleShift(seed: number, epoch: number, sample: number, max: number): [dy: number, dx: number] {
  const code = shiftCode(seed, epoch, sample, max);
  const span = 2 * max + 1;
  return [Math.floor(code / span) - max, (code % span) - max];
}

/** The generator sampleShift draws from, reseeded for each sample (shiftImages makes none per image). */
const shiftRng = new Rng(0);

/** sampleShift's (dy, dx) as one number: (dy + max) · (2·max + 1) + (dx + max). */
function shiftCode(seed: number, epoch: number, sample: number, max: number): number {
  // The stream of Rng.derive(seed, epoch, sample, SHIFT_KEY), without making a generator for it.
  shiftRng.reseed(deriveSeed(deriveSeed(deriveSeed(seed >>> 0, epoch), sample), SHIFT_KEY));
  const span = 2 * max + 1;
  const dy = shiftRng.nextInt(span);
  return dy * span + shiftRng.nextInt(span);
}

/**
 * Moves each of `count` images in x (count, rows·cols; one channel) by its sampleShift, in place: pixel (i, j) takes
 * the value of (i - dy, j - dx), and pixels shifted in from outside are 0 (the datasets' background). `samples[r]`
 * is the split index of row r. `scratch` holds one image (rows·cols floats).
 */
export function shiftImages(
  x: Float32Array,
  count: number,
  rows: number,
  cols: number,
  samples: ArrayLike<number>,
  seed: number,
  epoch: number,
  max: number,
  scratch: Float32Array,
): void {
  const size = rows * cols;
  if (scratch.length < size) throw new RangeError(`shiftImages: scratch holds ${scratch.length} floats, needs ${size}`);
  const span = 2 * max + 1;
  // sampleShift's draw as one number, from one generator reseeded per image: a pair and a generator per image were
  // most of what a training step left to the garbage collector. (The one view per image, for a native copy, is
  // faster than a copy loop: 270 against 320 µs per 128 MNIST images here.)
  for (let r = 0; r < count; r++) {
    const code = shiftCode(seed, epoch, samples[r], max);
    const dy = Math.floor(code / span) - max;
    const dx = (code % span) - max;
    if (dy === 0 && dx === 0) continue;
    const image = r * size;
    scratch.set(x.subarray(image, image + size));
    x.fill(0, image, image + size);
    for (let i = Math.max(0, dy); i < Math.min(rows, rows + dy); i++) {
      const from = (i - dy) * cols;
      const to = image + i * cols;
      for (let j = Math.max(0, dx); j < Math.min(cols, cols + dx); j++) x[to + j] = scratch[from + j - dx];
    }
  }
}
