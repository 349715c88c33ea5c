import type { ShardResult } from '@gradq/cluster';
import { describe, expect, it } from 'vitest';
import { shardResult } from '../testing/shard-result.js';
import { ClusterTimer } from './cluster-timings.js';

/** A result of `worker` that took fetch, compute and upload milliseconds. */
const result = (worker: string, fetchMs: number, computeMs: number, uploadMs: number): ShardResult =>
  shardResult({ worker, fetchMs, computeMs, uploadMs });

describe('ClusterTimer', () => {
  it('leaves out the first step, sums the rest, and takes the busiest worker and the aggregation out of the queue wait', () => {
    const timer = new ClusterTimer();
    timer.addStep([result('a', 100, 100, 100)], { publish: 1000, gather: 1000, aggregate: 1000 }); // workers starting up
    // Step 2: worker a did shards 0 and 2 (3 + 5 + 1 and 2 + 4 + 1 ms: 16 ms), b shard 1 (12 ms); shard 3 is empty.
    timer.addStep([result('a', 3, 5, 1), result('b', 0, 10, 2), result('a', 2, 4, 1), undefined], { publish: 2, gather: 30, aggregate: 4 });
    // Step 3: shorter than the worker's reported work (its upload is its previous result's): no queue wait, not less.
    timer.addStep([result('b', 1, 20, 1)], { publish: 3, gather: 21, aggregate: 1 });
    expect(timer.totals).toEqual({
      steps: 2,
      publish: 2 + 3,
      gather: 30 + 21,
      queueWait: 30 - 16 - 4 + 0,
      workerFetch: 3 + 0 + 2 + 1,
      workerCompute: 5 + 10 + 4 + 20,
      workerUpload: 1 + 2 + 1 + 1,
      aggregate: 4 + 1,
    });
    // The last step's own phases, the first step's included.
    expect(timer.last).toEqual({ publish: 3, gather: 21, queueWait: 0, workerFetch: 1, workerCompute: 20, workerUpload: 1, aggregate: 1 });
    const first = new ClusterTimer();
    first.addStep([result('a', 100, 100, 100)], { publish: 1000, gather: 1000, aggregate: 50 });
    expect(first.last).toMatchObject({ publish: 1000, queueWait: 1000 - 300 - 50, workerCompute: 100 });
    expect(first.totals.steps).toBe(0);
  });

  it('takes a step without results (every shard empty) as no worker busy', () => {
    const timer = new ClusterTimer();
    timer.addStep([], { publish: 1, gather: 1, aggregate: 1 });
    timer.addStep([undefined], { publish: 1, gather: 5, aggregate: 2 });
    expect(timer.totals).toMatchObject({ steps: 1, queueWait: 3, workerFetch: 0 });
  });
});
