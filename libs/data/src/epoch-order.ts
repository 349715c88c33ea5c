import { Rng } from '@gradq/nn';

/**
 * The order in which an epoch visits the samples: part of the contract described in shards.ts.
 *
 * epochOrder(seed, epoch, n) is the Fisher-Yates shuffle (Rng.shuffle) of 0..n-1 driven by
 * Rng.derive(seed, epoch). It is a pure function of (seed, epoch, n): the coordinator, every worker and
 * the in-process gradient source compute the same permutation without sending it anywhere.
 * Rng.derive folds keys to uint32, so seed and epoch are meant to be below 2^32.
 */
export function epochOrder(seed: number, epoch: number, n: number): Uint32Array {
  if (!Number.isSafeInteger(seed) || seed < 0) throw new RangeError(`epochOrder: invalid seed ${seed} (use a whole number >= 0)`);
  if (!Number.isSafeInteger(epoch) || epoch < 0) throw new RangeError(`epochOrder: invalid epoch ${epoch} (use a whole number >= 0)`);
  if (!Number.isInteger(n) || n < 1 || n > 0xffffffff) {
    throw new RangeError(`epochOrder: invalid sample count ${n} (use a whole number from 1 to 2^32 - 1)`);
  }
  const order = new Uint32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  return Rng.derive(seed, epoch).shuffle(order);
}
