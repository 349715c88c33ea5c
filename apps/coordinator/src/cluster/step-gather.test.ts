import { randomUUID } from 'node:crypto';
import {
  deleteKeysWithPrefix,
  encodeResultMessage,
  QUEUE_PREFIX,
  runKeys,
  TensorConnection,
  type ShardFailure,
  type ShardJob,
  type ShardResult,
} from '@gradq/cluster';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import type { StepPlan } from '@gradq/train';
import { decodeGradientInto, encodedGradientBytes, encodeGradient, paramsDigest, type GradientCodec } from '@gradq/nn';
import { waitFor } from '../testing/run-cli.js';
import { shardResult } from '../testing/shard-result.js';
import { GaveUpError } from './gave-up-error.js';
import { LeaseBook } from './lease-book.js';
import { ResultInbox } from './result-inbox.js';
import { StepGather, type ClusterCounters, type GatherContext } from './step-gather.js';
import { StepPublisher } from './step-publisher.js';
import { TensorRetry } from './tensor-retry.js';
import { WorkerRoster } from './worker-roster.js';

// One step's gather against the shared Redis, on a queue of its own, with no worker: the test pushes the result
// messages a worker would, in the order it wants them to arrive.
const URL = 'redis://127.0.0.1:6379';
const N = 12; // parameters
const queueName = `test-${randomUUID().slice(0, 8)}`;
const redis = new Redis(URL, { maxRetriesPerRequest: null });
const tensors = new TensorConnection(URL);
const queue = new Queue<ShardJob, ShardResult[]>(queueName, { connection: redis, prefix: QUEUE_PREFIX });

afterAll(async () => {
  await queue.obliterate({ force: true });
  await deleteKeysWithPrefix(redis, `${QUEUE_PREFIX}:${queueName}:`);
  await queue.close();
  await tensors.quit();
  await redis.quit();
});

/** Step 4 with `sizes[k]` samples in shard k (0 for an empty shard). */
function planOf(sizes: number[]): StepPlan {
  let start = 0;
  const shards = sizes.map((n): [number, number] => [start, (start += n)]);
  return { globalStep: 4, epoch: 0, stepInEpoch: 4, batchStart: 0, batchSize: start, shards, order: new Uint32Array(start) };
}

// Shard gradients of mixed magnitudes: their float32 sum depends on the order they are added in.
const GRADS = [
  Float32Array.from({ length: N }, (_, i) => 3e7 * (1 + i / N)),
  Float32Array.from({ length: N }, (_, i) => 1.25 + i),
  Float32Array.from({ length: N }, (_, i) => -7e6 * (1 + i / N) - 0.75),
  Float32Array.from({ length: N }, (_, i) => 0.375 * i - 1),
];

/** Σ GRADS[k] over `shards`, in that order, in float32. */
function sumOf(shards: number[]): number[] {
  const acc = new Float32Array(N);
  for (const k of shards) for (let i = 0; i < N; i++) acc[i] += GRADS[k][i];
  return Array.from(acc);
}

/** θ of the steps the tests publish. */
const THETA = Float32Array.from({ length: N }, (_, i) => i / 8);

/**
 * A step of a run of its own: its publisher, inbox and counters, a way to push what a worker would, and to
 * take a shard's job off the queue as a worker does (a worker's job is active, then removed once done).
 */
function harness(sizes: number[], giveUpMs = 600_000, codec: GradientCodec = 'none') {
  const runId = `r${randomUUID().slice(0, 8)}`;
  const keys = runKeys(queueName, runId);
  const log: string[] = [];
  const retry = new TensorRetry((l) => log.push(l));
  const publisher = new StepPublisher(
    tensors,
    queue,
    keys,
    { dataset: 'mnist', trainSamples: 64, seed: 1, model: 'mlp:2-2', shift: 0, codec },
    retry,
  );
  const counters: ClusterCounters = { duplicates: 0, rejected: 0, recomputed: 0, failed: 0, late: 0 };
  const inbox = new ResultInbox(tensors, keys.results, N, retry);
  const grads = GRADS.map(() => new Float32Array(N));
  const ctx: GatherContext = {
    runId, queue, publisher, inbox, grads, counters, roster: new WorkerRoster(), giveUpMs, log: (l) => log.push(l), codec,
  }; // prettier-ignore
  const plan = planOf(sizes);
  const sum = new Float32Array(N);
  const result = (shard: number, more: Partial<ShardResult> = {}): ShardResult =>
    shardResult({
      run: runId, step: plan.globalStep, shard, through: shard, count: sizes[shard], lossSum: 0.1 * (shard + 1), correct: 1,
      worker: `w${shard}`, computeMs: 1, codec, ...more,
    }); // prettier-ignore
  const failure = (shard: number, attempt: number): ShardFailure => ({
    v: 2, run: runId, step: plan.globalStep, shard, attempt, worker: 'w', error: 'out of memory',
  }); // prettier-ignore
  const push = async (...messages: Uint8Array[]): Promise<void> => void (await redis.rpush(keys.results, ...messages.map(Buffer.from)));
  /** Publishes the step (θ and its jobs) and returns its gather. */
  const start = async (shardsPerJob = 1): Promise<StepGather> => {
    const jobs = publisher.firstJobs(plan, shardsPerJob);
    const gather = new StepGather(plan, THETA, sum, ctx);
    gather.expect(jobs);
    await publisher.publish(plan.globalStep, THETA, jobs);
    return gather;
  };
  const take = async (shard: number, attempt = 0): Promise<void> =>
    void (await queue.remove(`${runId}.${plan.globalStep}.${shard}.${attempt}`));
  const waitingJobs = async (): Promise<string[]> =>
    (await queue.getWaiting())
      .map((j) => j.id ?? '')
      .filter((id) => id.startsWith(`${runId}.`))
      .sort();
  /** Publishes the step as leased (a lease set for `workers` workers, its leases added) and returns its gather. */
  const startLeased = async (book: LeaseBook, workers: number) => {
    const { set } = book.forStep(plan.globalStep, sizes.length, 100, workers, 1);
    ctx.leases = book;
    const gather = new StepGather(plan, THETA, sum, ctx);
    gather.expectLeased(set);
    const replica = { model: 'mlp:4-2', optimizer: 'adam' as const, lr: 0.001, schedule: 'cosine', warmup: 0, momentum: 0.9, weightDecay: 0, stepsPerEpoch: 100, totalSteps: 100 }; // prettier-ignore
    const leases = set.leases.map((l) => publisher.leaseJob(set, l, sizes.length, { batch: 64, epochs: 1, replica }));
    await publisher.publishLeased(plan.globalStep, THETA, set.set, leases);
    return { gather, set };
  };
  return { runId, keys, log, counters, sum, result, failure, push, start, startLeased, take, waitingJobs };
}

describe('StepGather', () => {
  it('adds each shard as soon as it and every shard before it are in, in shard order whatever the arrival order', async () => {
    const h = harness([3, 3, 3, 3, 0]); // shard 4 empty: a last, partial batch
    const shard = (k: number) => encodeResultMessage(h.result(k), GRADS[k]);
    expect(sumOf([2, 1, 0, 3]), 'the arrival order would give other bits').not.toEqual(sumOf([0, 1, 2, 3]));
    const gather = await h.start();
    const collected = gather.collect();
    await h.push(shard(2), shard(1));
    await waitFor('shards 2 and 1 popped', async () => (await redis.llen(h.keys.results)) === 0);
    await new Promise((r) => setTimeout(r, 200));
    expect(Array.from(h.sum), 'nothing added before shard 0 is in').toEqual(sumOf([]));
    await h.push(shard(0));
    await waitFor('shards 0-2 added', async () => h.sum.some((v) => v !== 0));
    expect(Array.from(h.sum)).toEqual(sumOf([0, 1, 2]));
    await h.push(shard(3));
    await collected;
    await gather.finish();
    expect(Array.from(h.sum)).toEqual(sumOf([0, 1, 2, 3]));
    expect(gather.shardResults).toEqual([h.result(0), h.result(1), h.result(2), h.result(3), undefined]);
    expect(gather.stats()).toEqual({ lossSum: 0.1 + 0.2 + 0.1 * 3 + 0.4, correct: 4 });
    expect(h.counters).toEqual({ duplicates: 0, rejected: 0, recomputed: 0, failed: 0, late: 0 });
    expect(h.log).toEqual([]);
  });

  it('keeps the first result of a shard, counts a later one as a duplicate, ignores messages of another run or step and counts those of an earlier step', async () => {
    const h = harness([2, 2, 2]);
    const gather = await h.start();
    await h.push(
      encodeResultMessage(h.result(1), GRADS[1]),
      encodeResultMessage(h.result(1, { worker: 'late' }), GRADS[3]),
      encodeResultMessage(h.result(0, { run: 'rother' }), GRADS[3]),
      encodeResultMessage(h.result(0, { run: 'rother', step: 2 }), GRADS[3]),
      encodeResultMessage(h.result(0, { step: 3 }), GRADS[3]), // late: a worker cut off during step 3, back now
      encodeResultMessage({ ...h.failure(2, 0), step: 1 }),
      encodeResultMessage(h.result(0, { step: 5 }), GRADS[3]),
      encodeResultMessage(h.result(0), GRADS[0]),
      encodeResultMessage(h.result(2), GRADS[2]),
    );
    await gather.collect();
    await gather.finish();
    expect(Array.from(h.sum)).toEqual(sumOf([0, 1, 2]));
    expect(gather.shardResults.map((r) => r?.worker)).toEqual(['w0', 'w1', 'w2']);
    expect(h.counters).toEqual({ duplicates: 1, rejected: 0, recomputed: 0, failed: 0, late: 2 });
    expect(h.log).toEqual(['step 4 shard 1: duplicate result from "late" ignored']);
  });

  it('rejects a bad gradient and adds the shard again, not for a bad answer of an earlier attempt', async () => {
    const h = harness([2, 2]);
    const nan = GRADS[0].slice();
    nan[3] = Number.NaN;
    const gather = await h.start();
    await h.take(0);
    await h.push(
      encodeResultMessage(h.result(0), nan),
      encodeResultMessage(h.result(0), GRADS[0].subarray(1)), // attempt 0, now that attempt 1 is waited for
      encodeResultMessage(h.result(1), GRADS[1]),
      encodeResultMessage(h.result(0, { attempt: 1 }), GRADS[0]),
    );
    await gather.collect();
    await gather.finish();
    expect(await h.waitingJobs()).toEqual([`${h.runId}.4.0.1`, `${h.runId}.4.1.0`]); // no worker here takes them
    expect(Array.from(h.sum)).toEqual(sumOf([0, 1]));
    expect(h.counters).toEqual({ duplicates: 0, rejected: 2, recomputed: 1, failed: 0, late: 0 });
    expect(h.log).toEqual([
      'step 4 shard 0: result rejected (from "w0": gradient value 3 is NaN); recomputing',
      `step 4 shard 0: result rejected (from "w0": gradient of ${N - 1} values, expected ${N} values)`,
    ]);
  });

  it('takes a result computed from a θ of its worker’s own (a stepping lease’s) only when its digest is this step’s θ', async () => {
    const h = harness([2, 2]);
    const gather = await h.start();
    await h.take(0);
    const other = THETA.slice();
    other[5] = Math.fround(other[5] + 2 ** -20);
    await h.push(
      encodeResultMessage(h.result(0, { params: paramsDigest(other) }), GRADS[0]),
      encodeResultMessage(h.result(0, { attempt: 1, params: paramsDigest(THETA) }), GRADS[0]),
      encodeResultMessage(h.result(1), GRADS[1]),
    );
    await gather.collect();
    await gather.finish();
    expect(Array.from(h.sum)).toEqual(sumOf([0, 1]));
    expect(h.counters).toMatchObject({ rejected: 1, recomputed: 1 });
    expect(h.log).toEqual([
      `step 4 shard 0: result rejected (computed from θ with digest ${paramsDigest(other)}; θ of step 4 has ${paramsDigest(THETA)}); recomputing`,
    ]);
  });

  it('decodes compressed gradients; rejects one tagged with another codec, of the wrong size or not finite, and recomputes', async () => {
    const h = harness([2, 2], 600_000, 'bf16');
    const bf16 = (g: Float32Array): Uint8Array => {
      const out = new Uint8Array(encodedGradientBytes('bf16', g.length));
      encodeGradient('bf16', g, out);
      return out;
    };
    const infinite = bf16(GRADS[0]);
    infinite.set([0x80, 0x7f], 6); // value 3: the bf16 bits of +∞
    const int8 = new Uint8Array(encodedGradientBytes('int8', N));
    encodeGradient('int8', GRADS[0], int8);
    const gather = await h.start();
    const collected = gather.collect();
    const bad: Array<[Partial<ShardResult>, Uint8Array]> = [
      [{ codec: 'int8' }, int8],
      [{}, bf16(GRADS[0]).subarray(2)],
      [{}, infinite],
      [{ codec: 'none' }, new Uint8Array(GRADS[0].buffer)],
    ];
    // Each bad answer from the attempt waited for, once a worker has taken it: each is rejected and recomputed.
    for (const [attempt, [more, bytes]] of bad.entries()) {
      if (attempt > 0) await waitFor(`attempt ${attempt}`, async () => (await h.waitingJobs()).includes(`${h.runId}.4.0.${attempt}`));
      await h.take(0, attempt);
      await h.push(encodeResultMessage(h.result(0, { attempt, ...more }), bytes));
    }
    await waitFor('attempt 4', async () => (await h.waitingJobs()).includes(`${h.runId}.4.0.4`));
    await h.push(encodeResultMessage(h.result(0, { attempt: 4 }), bf16(GRADS[0])), encodeResultMessage(h.result(1), bf16(GRADS[1])));
    await collected;
    await gather.finish();
    const decoded = (g: Float32Array): Float32Array => {
      const into = new Float32Array(N);
      decodeGradientInto('bf16', bf16(g), into);
      return into;
    };
    const expected = decoded(GRADS[0]);
    const one = decoded(GRADS[1]);
    for (let i = 0; i < N; i++) expected[i] += one[i];
    expect(Array.from(h.sum)).toEqual(Array.from(expected));
    expect(h.counters.rejected).toBe(4);
    expect(h.log.slice(0, 4)).toEqual([
      'step 4 shard 0: result rejected (from "w0": gradient encoded as int8, this run compresses with bf16); recomputing',
      `step 4 shard 0: result rejected (from "w0": bf16 gradient: ${2 * N - 2} bytes, expected ${2 * N} for ${N} values); recomputing`,
      'step 4 shard 0: result rejected (from "w0": bf16 gradient value 3 has bits 0x7f80 (∞ or NaN)); recomputing',
      'step 4 shard 0: result rejected (from "w0": gradient encoded as none, this run compresses with bf16); recomputing',
    ]);
  });

  it('adds a shard again when its worker reports the attempt waited for failed, and ignores reports of other attempts', async () => {
    const h = harness([2, 2]);
    const gather = await h.start();
    await h.take(0);
    await h.push(
      encodeResultMessage(h.failure(0, 0)),
      encodeResultMessage(h.failure(0, 0)), // about an earlier attempt now
      encodeResultMessage(h.failure(1, 5)), // about an attempt nobody asked for
      encodeResultMessage(h.result(1), GRADS[1]),
      encodeResultMessage(h.failure(1, 0)), // shard 1 is in
      encodeResultMessage(h.result(0, { attempt: 1 }), GRADS[0]),
    );
    await gather.collect();
    await gather.finish();
    expect(Array.from(h.sum)).toEqual(sumOf([0, 1]));
    expect(h.counters).toEqual({ duplicates: 0, rejected: 0, recomputed: 1, failed: 1, late: 0 });
    expect(h.log).toEqual([
      'step 4 shard 0: worker w failed ("out of memory"); recomputing (its next failures are counted, not logged, until it delivers a result)',
    ]);
  });

  it('waits for every shard of a job of several, and recomputes each shard of it that failed as a job of its own', async () => {
    const h = harness([2, 2, 2, 0]); // jobs: shards 0-1, shards 2-3 (3 empty)
    const gather = await h.start(2);
    expect(await h.waitingJobs()).toEqual([`${h.runId}.4.0.0`, `${h.runId}.4.2.0`]);
    const collected = gather.collect();
    await h.take(0); // one worker takes shards 0-1: shard 0 fails, so does shard 1 after it
    await h.push(encodeResultMessage(h.failure(0, 0)), encodeResultMessage(h.failure(1, 0)));
    await waitFor('shards 0 and 1 added again', async () => (await h.waitingJobs()).length === 3);
    expect(await h.waitingJobs()).toEqual([`${h.runId}.4.0.1`, `${h.runId}.4.1.1`, `${h.runId}.4.2.0`]);
    await h.take(2);
    await h.push(encodeResultMessage(h.result(2), GRADS[2]));
    await h.take(1, 1);
    await h.push(encodeResultMessage(h.result(1, { attempt: 1 }), GRADS[1]));
    await h.take(0, 1);
    await h.push(encodeResultMessage(h.result(0, { attempt: 1 }), GRADS[0]));
    await collected;
    await gather.finish();
    expect(Array.from(h.sum)).toEqual(sumOf([0, 1, 2]));
    expect(gather.shardResults.map((r) => r?.attempt)).toEqual([1, 1, 0, undefined]);
    expect(h.counters).toEqual({ duplicates: 0, rejected: 0, recomputed: 2, failed: 2, late: 0 });
  });

  it('takes one result for shards 0..n (summed by the worker) in place of their own, and adds the rest after it', async () => {
    const h = harness([2, 2, 2, 2]);
    const gather = await h.start(2);
    const prefix = Float32Array.from(sumOf([0, 1]));
    await h.push(
      encodeResultMessage(h.result(3), GRADS[3]),
      encodeResultMessage(h.result(0, { through: 1, count: 4 }), prefix),
      encodeResultMessage(h.result(1), GRADS[1]), // covered already
      encodeResultMessage(h.result(2), GRADS[2]),
    );
    await gather.collect();
    await gather.finish();
    expect(Array.from(h.sum)).toEqual(sumOf([0, 1, 2, 3]));
    expect(gather.stats().correct).toBe(3);
    expect(h.counters).toEqual({ duplicates: 1, rejected: 0, recomputed: 0, failed: 0, late: 0 });
  });

  it('ignores a result for shards 0..n when one of them is in from an attempt of its own, and computes shard 0 again', async () => {
    const h = harness([2, 2]);
    const gather = await h.start(2);
    await h.take(0);
    const collected = gather.collect();
    await h.push(encodeResultMessage(h.failure(1, 0)));
    await waitFor('shard 1 added again', async () => (await h.waitingJobs()).length === 1);
    await h.take(1, 1);
    await h.push(
      encodeResultMessage(h.result(1, { attempt: 1 }), GRADS[1]),
      encodeResultMessage(h.result(0, { through: 1, count: 4 }), Float32Array.from(sumOf([0, 1]))),
    );
    await waitFor('shard 0 added again', async () => (await h.waitingJobs()).includes(`${h.runId}.4.0.1`));
    await h.push(encodeResultMessage(h.result(0, { attempt: 1 }), GRADS[0]));
    await collected;
    await gather.finish();
    expect(Array.from(h.sum)).toEqual(sumOf([0, 1]));
    expect(h.counters).toEqual({ duplicates: 1, rejected: 0, recomputed: 2, failed: 1, late: 0 });
    expect(h.log).toContain('step 4 shards 0..1: result from "w0" ignored (some of its shards are in already)');
  });

  it('counts a job of several shards gone from the queue once a watchdog tick: its shards are recomputed at the second tick, not the first', async () => {
    const h = harness([2, 2, 2, 2]);
    const gather = await h.start(2); // jobs of shards 0..1 and 2..3
    await h.take(2); // a worker took the job of shards 2..3 and completed it; no result came
    const collected = gather.collect();
    await h.push(encodeResultMessage(h.result(0), GRADS[0]), encodeResultMessage(h.result(1), GRADS[1]));
    await new Promise((r) => setTimeout(r, 4000)); // past the first tick (3 s), before the second
    expect(h.counters.recomputed, 'the first tick allows for a result still on its way').toBe(0);
    await waitFor('shards 2 and 3 added again', async () => h.counters.recomputed === 2, 10_000);
    expect(h.log.filter((l) => l.includes('is gone without a usable result'))).toHaveLength(2);
    await h.push(encodeResultMessage(h.result(2, { attempt: 1 }), GRADS[2]), encodeResultMessage(h.result(3, { attempt: 1 }), GRADS[3]));
    await collected;
    expect(Array.from(h.sum)).toEqual(sumOf([0, 1, 2, 3]));
  });

  it('rejects what it cannot read or place without recomputing anything: the watchdog covers the shard', async () => {
    const h = harness([2]);
    const gather = await h.start();
    const longest = 8 + 64 * 1024 + 4 * N;
    await h.push(
      new Uint8Array(longest + 1),
      new Uint8Array(5),
      encodeResultMessage(h.result(1), GRADS[1]),
      encodeResultMessage(h.result(0), GRADS[0]),
    );
    await gather.collect();
    expect(Array.from(h.sum)).toEqual(sumOf([0]));
    expect(h.counters).toEqual({ duplicates: 0, rejected: 3, recomputed: 0, failed: 0, late: 0 });
    expect(h.log).toEqual([
      `step 4: result rejected (result message of ${longest + 1} bytes (at most ${longest} for this model))`,
      'step 4: result rejected (result message of 5 bytes is too short)',
      'step 4: result rejected (shard 1 does not exist)',
    ]);
  });

  it('is not ended by any count of messages: a burst of failure reports and bad results costs one attempt per attempt taken', async () => {
    const h = harness([2, 2]);
    const nan = GRADS[0].slice();
    nan[0] = Number.NaN;
    const gather = await h.start();
    const collected = gather.collect();
    await h.push(encodeResultMessage(h.failure(0, 5))); // about an attempt nobody waits for: ignored
    await h.push(encodeResultMessage(h.failure(0, 0))); // attempt 0 was not taken by any worker: rejected
    await waitFor('the untaken report rejected', () => h.counters.rejected === 1);
    await h.take(0);
    await h.push(encodeResultMessage(h.failure(0, 0))); // taken: attempt 1 is added
    await waitFor('attempt 1', () => h.counters.recomputed === 1);
    const burst: Uint8Array[] = [];
    for (let attempt = 0; attempt < 50; attempt++) {
      burst.push(encodeResultMessage(h.failure(0, attempt)), encodeResultMessage(h.result(0, { attempt }), nan), new Uint8Array(3));
    }
    await h.push(...burst, encodeResultMessage(h.result(1), GRADS[1]), encodeResultMessage(h.result(0), GRADS[0]));
    await collected;
    await gather.finish();
    expect(Array.from(h.sum)).toEqual(sumOf([0, 1]));
    // Rejected: the first untaken report; in the burst, the report about attempt 1 (untaken), 50 NaN results and 50 unreadable messages.
    expect(h.counters).toEqual({ duplicates: 0, rejected: 102, recomputed: 1, failed: 1, late: 0 });
    expect(h.log.filter((l) => l.includes('rejected'))).toHaveLength(11); // 10 lines, then one saying the rest are counted
    expect(h.log).toContain('step 4: more results rejected; counted (results_rejected), not logged, for the rest of the step');
    expect(
      (await h.waitingJobs()).filter((id) => id.startsWith(`${h.runId}.4.0.`)),
      'attempt 1, overtaken by attempt 0, is withdrawn',
    ).toEqual([]);
  });

  it('writes θ again when a failure report comes and θ is gone from Redis (a Redis restarted empty)', async () => {
    const h = harness([2]);
    const gather = await h.start();
    const collected = gather.collect();
    await redis.del(h.keys.params(4));
    await h.take(0);
    await h.push(encodeResultMessage({ ...h.failure(0, 0), error: `${h.keys.params(4)}: missing (expired, or the run was cleaned up)` }));
    await waitFor('θ written again', async () => (await redis.exists(h.keys.params(4))) === 1);
    expect(new Float32Array(new Uint8Array((await redis.getBuffer(h.keys.params(4))) as Buffer).buffer)).toEqual(THETA);
    await h.push(encodeResultMessage(h.result(0, { attempt: 1 }), GRADS[0]));
    await collected;
    expect(h.log).toContain('step 4: θ was gone from Redis (restarted empty?); written again');
    expect(h.counters).toMatchObject({ failed: 1, recomputed: 1 });
  });

  it('gives up, one GaveUpError, when no valid result came for giveUpMs and no worker is connected', async () => {
    const h = harness([2], 1000);
    const gather = await h.start();
    const error = await gather.collect().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(GaveUpError);
    expect((error as Error).message).toMatch(
      new RegExp(
        `^step 4: no valid result for [3-9] s and no responsive worker \\(0 workers connected\\); gave up \\(start workers: gradq worker --queue ${queueName}; or see their logs\\)$`,
      ),
    );
    await gather.withdrawAll();
    expect(await h.waitingJobs()).toEqual([]);
  });

  it('leased shards: a lease handed back before its shards of the step are computed again as one-step jobs, and the set ends', async () => {
    const h = harness([3, 3, 3, 3]);
    const book = new LeaseBook(h.runId, 8);
    const { gather, set } = await h.startLeased(book, 2);
    expect(await h.waitingJobs()).toEqual(set.leases.map((l) => l.id).sort());
    expect(await redis.xlen(h.keys.clock)).toBe(1); // step 4 announced
    const collected = gather.collect();
    const [first, second] = set.leases;
    await h.push(encodeResultMessage(h.result(0, { through: 1, count: 6 }), Float32Array.from(sumOf([0, 1]))));
    // A release from before the set's first step (4) is not this set's: rejected.
    await h.push(encodeResultMessage({ v: 1, kind: 'release', run: h.runId, step: 3, lease: second.id, worker: 'stale' }));
    await waitFor('the stale release rejected', async () => h.counters.rejected === 1);
    expect(await redis.xlen(h.keys.clock)).toBe(1); // and its holders were told nothing
    // The second lease's holder hands it back (step 4 on): shards 2 and 3 become one-step jobs, attempt 1.
    const release = { v: 1 as const, kind: 'release' as const, run: h.runId, step: 4, lease: second.id, worker: 'idle' };
    await h.push(encodeResultMessage(release));
    await waitFor('shards 2 and 3 added again', async () => (await h.waitingJobs()).some((id) => id.endsWith('.4.3.1')));
    expect(h.log).toEqual([
      expect.stringMatching(/^step 4: result rejected \(release of lease \S+ from step 3, before its first step 4\)$/),
      expect.stringMatching(
        new RegExp(`^step 4: worker "idle" handed lease ${second.id.replace(/\./g, '\\.')} back; recomputing shards 2, 3$`),
      ),
    ]);
    // The set's holders are told it ends with step 4 (clock-entry.ts).
    const entries = await redis.xrange(h.keys.clock, '-', '+');
    expect(entries.map(([, fields]) => fields)).toEqual([
      ['step', '4', 'set', String(set.set), 'last', '0'],
      ['step', '4', 'set', String(set.set), 'last', '1'],
    ]);
    await h.push(encodeResultMessage(h.result(2, { attempt: 1 }), GRADS[2]), encodeResultMessage(h.result(3, { attempt: 1 }), GRADS[3]));
    await collected;
    await gather.finish();
    expect(Array.from(h.sum)).toEqual(sumOf([0, 1, 2, 3]));
    expect(h.counters).toMatchObject({ recomputed: 2, rejected: 1 });
    // The set has ended: the next step makes a new one, for one worker (the first lease was still queued when the
    // second was handed back: LeaseBook.tooMany); a release of the old set changes nothing.
    expect(book.lease(first.id)).toEqual(first);
    const next = book.forStep(5, 4, 100, 2, 1);
    expect(next).toMatchObject({ made: true, set: { leases: [{ shard: 0, count: 4 }] } });
    expect(book.lease(first.id)).toBeUndefined();
    await queue.remove(first.id);
    await queue.remove(second.id).catch(() => 0);
  });
});
