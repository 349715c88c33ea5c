import type { ShardResult } from '@gradq/cluster';

/** A result header as a worker sends it (run 'r', step 0, shard 0, one sample, all times 0), `more` in place of any field. */
export function shardResult(more: Partial<ShardResult> = {}): ShardResult {
  return {
    v: 4, run: 'r', step: 0, shard: 0, through: 0, attempt: 0, codec: 'none', count: 1, lossSum: 0, correct: 0, worker: 'w',
    fetchMs: 0, computeMs: 0, uploadMs: 0, ...more,
  }; // prettier-ignore
}
