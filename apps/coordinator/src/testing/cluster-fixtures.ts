import type { ChildProcess } from 'node:child_process';
import { decodeParamsInto, jobShards, QUEUE_PREFIX, type MessageSigner, type ShardJob, type ShardResult } from '@gradq/cluster';
import { epochOrder, gatherBatch, limitSamples, loadDataset, type Split } from '@gradq/data';
import { Model } from '@gradq/nn';
import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { expect } from 'vitest';
import { SHARED_DATA } from './run-cli.js';

/** The cluster tests' run: same seed, 4 shards, 2 epochs over the first 4096 MNIST samples (STEPS steps). */
export const RUN = [
  '--data-dir',
  SHARED_DATA,
  '--model',
  'mlp:784-32-10',
  '--train-samples',
  '4096',
  '--epochs',
  '2',
  '--shards',
  '4',
  '--batch',
  '64',
  '--augment-shift',
  '0',
  '--seed',
  '5',
  '--json',
];
export const STEPS = 128;

/** The highest parameter version a run has published on `queue` (-1 before the first). */
export async function publishedStep(redis: Redis, queue: string): Promise<number> {
  const keys = await redis.keys(`${QUEUE_PREFIX}:${queue}:run:*:params:*`);
  return Math.max(-1, ...keys.map((k) => Number(k.slice(k.lastIndexOf(':') + 1))));
}

/**
 * Stops `worker` (SIGSTOP) at a moment it holds a shard of `jobs`' queue: it must be the only worker taking jobs,
 * so that an active job is its. Fails when the run has `finished()` first.
 */
export async function freezeHoldingShard(worker: ChildProcess, jobs: Queue, finished: () => boolean): Promise<void> {
  for (let holding = false; !holding;) {
    expect(finished(), 'the run ended before the worker was caught holding a shard').toBe(false);
    worker.kill('SIGSTOP');
    await new Promise((r) => setTimeout(r, 200));
    holding = (await jobs.getActiveCount()) > 0;
    if (!holding) worker.kill('SIGCONT');
  }
}

/** The training split every worker uses, loaded once. */
export async function honestTrainSplit(): Promise<Split> {
  return (await loadDataset('mnist', { dataDir: SHARED_DATA })).train;
}

/**
 * What an honest worker computes for each non-empty shard of a job, one result per shard (never one for shards
 * 0..n), with libs/nn and libs/data directly (θ read from `redis`, signed with `signer` if any).
 */
export async function honestShards(
  redis: Redis,
  job: ShardJob,
  fullTrain: Split,
  signer?: MessageSigner,
): Promise<Array<{ grads: Float32Array; result: ShardResult; start: number }>> {
  const train = limitSamples(fullTrain, job.trainSamples);
  const model = new Model(job.model);
  decodeParamsInto(await redis.getBuffer(job.paramsKey), model.params, job.paramsKey, signer);
  const order = epochOrder(job.seed, job.epoch, job.trainSamples);
  return jobShards(job)
    .filter(({ start, end }) => end > start)
    .map(({ shard, start, end }) => {
      const count = end - start;
      const x = new Float32Array(count * train.features);
      const y = new Uint8Array(count);
      gatherBatch(train, order, start, end, x, y);
      model.zeroGrads();
      const stats = model.forwardBackward(x, y, count);
      const result: ShardResult = {
        v: 4, run: job.run, step: job.step, shard, through: shard, attempt: job.attempt, codec: job.codec, count, ...stats,
        worker: 'evil', fetchMs: 0, computeMs: 0, uploadMs: 0,
      }; // prettier-ignore
      return { grads: model.grads.slice(), result, start };
    });
}
