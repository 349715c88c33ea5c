import { randomUUID } from 'node:crypto';
import {
  checkShardJobSignature,
  decodeParamsInto,
  MessageSigner,
  deleteKeysWithPrefix,
  KEY_TTL_MS,
  QUEUE_PREFIX,
  runKeys,
  TensorConnection,
  validateShardJob,
  type ShardJob,
  type ShardResult,
} from '@gradq/cluster';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import type { StepPlan } from '@gradq/train';
import { StepPublisher } from './step-publisher.js';
import { TensorRetry } from './tensor-retry.js';

// Against the shared Redis, on a queue of its own.
const URL = 'redis://127.0.0.1:6379';
const queueName = `test-${randomUUID().slice(0, 8)}`;
const keys = runKeys(queueName, 'rpub');
const redis = new Redis(URL, { maxRetriesPerRequest: null });
const tensors = new TensorConnection(URL);
const queue = new Queue<ShardJob, ShardResult[]>(queueName, { connection: redis, prefix: QUEUE_PREFIX });
const run = { dataset: 'mnist', trainSamples: 1000, seed: 7, model: 'mlp:4-3-2', shift: 0, codec: 'none' as const };
const publisher = new StepPublisher(tensors, queue, keys, run, new TensorRetry(() => undefined));

// Step 6, the last of epoch 1: a partial batch of 3 samples over 4 shards, the last of them empty.
const plan: StepPlan = {
  globalStep: 6,
  epoch: 1,
  stepInEpoch: 2,
  batchStart: 8,
  batchSize: 3,
  shards: [
    [8, 9],
    [9, 10],
    [10, 11],
    [11, 11],
  ],
  order: new Uint32Array(11),
};

afterAll(async () => {
  await queue.obliterate({ force: true });
  await deleteKeysWithPrefix(redis, `${QUEUE_PREFIX}:${queueName}:`);
  await queue.close();
  await tensors.quit();
  await redis.quit();
});

describe('StepPublisher', () => {
  it('writes θ_t, drops θ_{t-1}, and adds a job a worker accepts for every non-empty shard', async () => {
    await redis.set(keys.params(5), 'θ_5', 'PX', 60_000);
    const params = Float32Array.from({ length: 23 }, (_, i) => Math.fround(i / 3 - 2));
    const jobs = publisher.firstJobs(plan);
    await publisher.publish(plan.globalStep, params, jobs);

    const stored = new Float32Array(params.length);
    decodeParamsInto(await redis.getBuffer(keys.params(6)), stored, keys.params(6));
    expect(Array.from(stored)).toEqual(Array.from(params));
    const ttl = await redis.pttl(keys.params(6));
    expect(ttl > KEY_TTL_MS - 60_000 && ttl <= KEY_TTL_MS).toBe(true);
    expect(await redis.exists(keys.params(5))).toBe(0);

    const waiting = await queue.getWaiting();
    expect(waiting.map((j) => j.id).sort()).toEqual(['rpub.6.0.0', 'rpub.6.1.0', 'rpub.6.2.0']);
    for (const j of waiting) {
      const data = validateShardJob(j.data);
      const [start, end] = plan.shards[data.shard];
      expect(data).toEqual({
        v: 5, run: 'rpub', step: 6, shard: data.shard, attempt: 0, dataset: 'mnist', trainSamples: 1000, seed: 7, epoch: 1, start, end, cuts: [],
        model: 'mlp:4-3-2', shift: 0, paramsKey: keys.params(6), resultsKey: keys.results, codec: 'none', residualIn: [], residualOut: [],
      }); // prettier-ignore
    }
  });

  it('groups consecutive shards into jobs, cut where the shards meet, and leaves out a job of empty shards only', () => {
    const grouped = (perJob: number) =>
      publisher.firstJobs(plan, perJob).map((j) => [j.opts.jobId, j.data.shard, j.data.start, j.data.end, j.data.cuts]);
    expect(grouped(2)).toEqual([['rpub.6.0.0', 0, 8, 10, [9]], ['rpub.6.2.0', 2, 10, 11, [11]]]); // prettier-ignore
    expect(grouped(3)).toEqual([['rpub.6.0.0', 0, 8, 11, [9, 10]]]); // shard 3 alone is empty: no job
    expect(grouped(4)).toEqual([['rpub.6.0.0', 0, 8, 11, [9, 10, 11]]]);
    for (const j of publisher.firstJobs(plan, 4)) expect(validateShardJob(JSON.parse(JSON.stringify(j.data)))).toEqual(j.data);
  });

  it('adds a new attempt at a shard, and withdraws waiting jobs (one already gone is no error)', async () => {
    // The queue holds the jobs published above.
    const again = publisher.job(plan, 1, 1);
    expect(again.opts.jobId).toBe('rpub.6.1.1');
    expect(again.data).toMatchObject({ shard: 1, attempt: 1, start: 9, end: 10 });
    await publisher.add(again);
    expect(validateShardJob((await queue.getJob('rpub.6.1.1'))?.data)).toEqual(again.data);
    await publisher.withdraw(['rpub.6.1.0', 'rpub.6.9.9', 'rpub.6.2.0']);
    expect((await queue.getWaiting()).map((j) => j.id).sort()).toEqual(['rpub.6.0.0', 'rpub.6.1.1']);
  });

  it('with the run’s secret, signs θ (for its key) and every job, attempts included', async () => {
    const signer = new MessageSigner(Buffer.from('the run’s shared secret, 32 bytes'));
    const signedKeys = runKeys(queueName, 'rsig');
    const signing = new StepPublisher(tensors, queue, signedKeys, run, new TensorRetry(() => undefined), signer);
    const params = Float32Array.from({ length: 23 }, (_, i) => Math.fround(i / 7 - 1));
    await signing.publish(plan.globalStep, params, signing.firstJobs(plan));
    await signing.add(signing.job(plan, 2, 1));

    const key = signedKeys.params(6);
    const stored = new Float32Array(params.length);
    const bytes = await redis.getBuffer(key);
    decodeParamsInto(bytes, stored, key, signer);
    expect(Array.from(stored)).toEqual(Array.from(params));
    expect(() => decodeParamsInto(bytes, stored, signedKeys.params(7), signer)).toThrow(/bad signature/); // not θ of another step
    const jobs = (await queue.getWaiting()).filter((j) => j.id?.startsWith('rsig.'));
    expect(jobs.map((j) => j.id).sort()).toEqual(['rsig.6.0.0', 'rsig.6.1.0', 'rsig.6.2.0', 'rsig.6.2.1']);
    for (const j of jobs) {
      const data = validateShardJob(j.data);
      expect(data.sig).toMatch(/^[0-9a-f]{64}$/);
      expect(() => checkShardJobSignature(data, signer)).not.toThrow();
    }
  });
});
