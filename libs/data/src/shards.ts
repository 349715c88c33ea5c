import { DataError } from './data-error.js';

/**
 * THE CONTRACT between the coordinator, the workers and the in-process gradient source: which samples
 * step t and shard k use. Given n training samples, the global batch size B, the shard count K and the
 * run's seed, everything follows; no sample index ever needs to travel.
 *
 * 1. Epoch order: epochOrder(seed, epoch, n) (epoch-order.ts), a permutation of 0..n-1.
 * 2. Steps: an epoch has stepsPerEpoch(n, B) = ceil(n / B) steps. Global step t (counted from 0 over the
 *    whole run) is step s = t mod stepsPerEpoch of epoch e = floor(t / stepsPerEpoch). It covers the
 *    positions [s*B, min((s+1)*B, n)) of the epoch order. The last step of an epoch is partial (n mod B
 *    samples when B does not divide n): nothing is dropped, every sample is used exactly once per epoch,
 *    and the optimizer divides the summed gradient by the step's actual batch size, not by B.
 * 3. Shards: shard k of a batch of b samples covers batch positions shardRange(b, K, k) =
 *    [floor(k*b/K), floor((k+1)*b/K)): contiguous, in shard order, sizes differing by at most 1. A shard
 *    is empty only when b < K, which can only happen in the last, partial batch of an epoch (K <= B is
 *    checked up front); such a shard contributes a zero gradient and a count of 0.
 * 4. The coordinator adds the K shard gradient sums in shard order 0..K-1, so the result does not
 *    depend on which worker computed which shard.
 * 5. Augmentation, when a run has it: sample s in epoch e is shifted by sampleShift(seed, e, s, max)
 *    (augment.ts), a pure function, so a shard's inputs are the same wherever it is computed.
 */

/** The number of steps in one epoch: ceil(n / batch); the last one may be partial. */
export function stepsPerEpoch(n: number, batch: number): number {
  checkSampleCount(n);
  checkBatchSize(batch);
  return Math.ceil(n / batch);
}

/** Shard k of K within a batch of batchSize samples: [start, end) relative to the batch start. */
export function shardRange(batchSize: number, shards: number, k: number): [number, number] {
  if (!Number.isInteger(batchSize) || batchSize < 0) throw new RangeError(`shardRange: invalid batch size ${batchSize}`);
  if (!Number.isInteger(shards) || shards < 1) throw new RangeError(`shardRange: invalid shard count ${shards}`);
  if (!Number.isInteger(k) || k < 0 || k >= shards) throw new RangeError(`shardRange: shard ${k} is not in [0, ${shards})`);
  return [Math.floor((k * batchSize) / shards), Math.floor(((k + 1) * batchSize) / shards)];
}

/** What global step `globalStep` covers. Positions index the epoch order of `epoch`. */
export interface StepPlan {
  epoch: number;
  stepInEpoch: number;
  /** First position of this step's batch in the epoch order. */
  batchStart: number;
  /** Samples in this step: batch, or fewer for the last step of an epoch. */
  batchSize: number;
  /** For shard k: [start, end) positions in the epoch order (absolute, not relative to batchStart). */
  shards: Array<[number, number]>;
}

/** The epoch, batch and shard positions of global step `globalStep` (see the contract above). */
export function planStep(n: number, batch: number, shards: number, globalStep: number): StepPlan {
  checkShardCount(shards, batch);
  const steps = stepsPerEpoch(n, batch);
  if (!Number.isSafeInteger(globalStep) || globalStep < 0) {
    throw new RangeError(`planStep: invalid global step ${globalStep} (use a whole number >= 0)`);
  }
  const epoch = Math.floor(globalStep / steps);
  const stepInEpoch = globalStep - epoch * steps;
  const batchStart = stepInEpoch * batch;
  const batchSize = Math.min(batch, n - batchStart);
  const ranges: Array<[number, number]> = [];
  for (let k = 0; k < shards; k++) {
    const [start, end] = shardRange(batchSize, shards, k);
    ranges.push([batchStart + start, batchStart + end]);
  }
  return { epoch, stepInEpoch, batchStart, batchSize, shards: ranges };
}

/** Throws DataError unless n (the number of training samples) is a whole number >= 1. */
export function checkSampleCount(n: number): void {
  if (!Number.isInteger(n) || n < 1) {
    throw new DataError(`training sample count ${n} is not valid: expected a whole number >= 1`, { about: 'trainSamples' });
  }
}

/** Throws DataError unless the batch size is a whole number >= 1. */
export function checkBatchSize(batch: number): void {
  if (!Number.isInteger(batch) || batch < 1) {
    throw new DataError(`batch size ${batch} is not valid: expected a whole number >= 1`, { about: 'batch' });
  }
}

/** Throws DataError unless the shard count is a whole number in [1, batch]: the one check of this rule. */
export function checkShardCount(shards: number, batch: number): void {
  checkBatchSize(batch);
  if (!Number.isInteger(shards) || shards < 1) {
    throw new DataError(`shard count ${shards} is not valid: expected a whole number >= 1`, { about: 'shards' });
  }
  if (shards > batch) {
    throw new DataError(`${shards} shards exceed a batch of ${batch}: each shard needs at least one sample; use ${batch} shards or fewer`, {
      about: 'shards',
    });
  }
}
