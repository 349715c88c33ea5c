import { leaseRoundJob, runKeys, validateLeaseJob, validateRoundJob, type TensorStore } from '@gradq/cluster';
import type { OptimizerState } from '@gradq/nn';
import { replicaSpecFor, type StepPlan } from '@gradq/train';
import type { Queue } from 'bullmq';
import { describe, expect, it } from 'vitest';
import { RoundPublisher, type RoundPlan } from './round-publisher.js';
import { StepPublisher } from './step-publisher.js';
import type { TensorRetry } from './tensor-retry.js';

// The round jobs themselves (nothing here touches Redis: job() and firstJobs() only describe the jobs).
const keys = runKeys('q', 'rr');
const run = { dataset: 'mnist', trainSamples: 1024, seed: 7, model: 'mlp:784-8-10', shift: 0, codec: 'none' as const };
const inner = { model: run.model, optimizer: 'adam', lr: 0.001, schedule: 'cosine', warmup: 0, momentum: 0.9, weightDecay: 0 };
const rounds = {
  h: 2,
  batch: 256,
  shards: 4,
  epochs: 2,
  replica: replicaSpecFor({ ...inner, trainSamples: 1024, batch: 256, epochs: 2 }),
  stateBuffers: 2,
};
const unused = {} as never;
const publisher = new RoundPublisher(
  unused as TensorStore,
  unused as Queue,
  keys,
  run,
  rounds,
  new StepPublisher(unused as TensorStore, unused as Queue, keys, run, unused as TensorRetry),
  unused as TensorRetry,
);

/** Round of steps 4..5 whose four replicas start from states at step counters 4, 4, 3 (it took no step once), 4. */
function round(): RoundPlan {
  const step = (globalStep: number): StepPlan => ({
    globalStep, epoch: 1, stepInEpoch: globalStep - 4, batchStart: (globalStep - 4) * 256, batchSize: 256,
    shards: [[0, 64], [64, 128], [128, 192], [192, 256]], order: new Uint32Array(1024),
  }); // prettier-ignore
  const state = (t: number): OptimizerState => ({
    name: 'adam', hyper: { momentum: 0.9, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0 }, t, buffers: [],
  }); // prettier-ignore
  return { steps: [step(4), step(5)], states: [4, 4, 3, 4].map(state) };
}

describe('RoundPublisher jobs', () => {
  it('carry consecutive replicas, perJob a job, each with its own state key and step counter; workers accept them', () => {
    const jobs = publisher.firstJobs(round(), 3);
    expect(jobs.map((j) => [j.data.shard, j.data.replicas])).toEqual([
      [0, 3],
      [3, 1],
    ]);
    expect(jobs[0].data.stateKeys).toEqual([keys.state(4, 0), keys.state(4, 1), keys.state(4, 2)]);
    expect(jobs[0].data.stateTs).toEqual([4, 4, 3]);
    expect(jobs[1].data).toMatchObject({ stateKeys: [keys.state(4, 3)], stateTs: [4], paramsKey: keys.params(4), steps: 2 });
    expect(jobs.map((j) => j.opts.jobId)).toEqual(['rr.4.0.0', 'rr.4.3.0']);
    for (const j of jobs) expect(validateRoundJob(j.data)).toEqual(j.data);
  });

  it('one replica a job by default, and a recomputation is a job of its one replica', () => {
    expect(publisher.firstJobs(round()).map((j) => [j.data.shard, j.data.replicas])).toEqual([
      [0, 1],
      [1, 1],
      [2, 1],
      [3, 1],
    ]);
    const again = publisher.job(round(), 2, 1);
    expect(again.data).toMatchObject({ shard: 2, replicas: 1, attempt: 1, stateKeys: [keys.state(4, 2)], stateTs: [3] });
    expect(again.opts.jobId).toBe('rr.4.2.1');
  });

  it('a round lease holds its replicas’ rounds from their states of its first round, and its round jobs are the jobs of those replicas', () => {
    const set = { set: 3, first: 4, end: 8, leases: [{ id: 'rr.4.2.3', shard: 2, count: 2 }] };
    const lease = validateLeaseJob(publisher.leaseJob(round(), set, set.leases[0]).data);
    expect(lease).toMatchObject({ rounds: 2, step: 4, steps: 4, shard: 2, count: 2, set: 3, stateBuffers: 2, stepping: false });
    expect(lease.stateKeys).toEqual([keys.state(4, 2), keys.state(4, 3)]);
    expect(lease.stateTs).toEqual([3, 4]);
    // Its first round, as the holder computes it: the round job of replicas 2..3 that firstJobs would add.
    expect(leaseRoundJob(lease, 4, 2, lease)).toEqual(publisher.job(round(), 2, 0, 2).data); // (unsigned: no secret here)
  });
});
