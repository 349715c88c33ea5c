import type { ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  decodeParamsInto,
  decodePointer,
  deleteKeysWithPrefix,
  jobShards,
  QUEUE_PREFIX,
  readSlot,
  type MessageSigner,
  type RoundJob,
  type RoundResult,
  type ShardJob,
  type ShardResult,
} from '@gradq/cluster';
import { epochOrder, gatherBatch, limitSamples, loadDataset, type Split } from '@gradq/data';
import { Model } from '@gradq/nn';
import { makeReplicaFrom, replicaRound, replicaSpecFor, roundSteps, ShardInputs } from '@gradq/train';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { expect } from 'vitest';
import { killLeftoverChildren, lastJson, runCli, SHARED_DATA, waitFor, type spawnCli } from './run-cli.js';

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

/** RUN over the first `samples` training samples instead of 4096 (2 epochs of batches of 64: samples / 32 steps). */
export function runOver(samples: number): string[] {
  return RUN.map((a) => (a === '4096' ? String(samples) : a));
}

/**
 * What a cluster test file shares: a Redis connection, fresh queue names (`test-<tag>-…`) and a temporary
 * directory, all removed by cleanUp() (afterAll, with any child still running), and --local runs' summaries,
 * computed once for each argument list however many tests compare with them.
 */
export class ClusterTestbed {
  readonly redis = new Redis('redis://127.0.0.1:6379', { maxRetriesPerRequest: null });
  readonly tmp: string;
  private readonly queues: string[] = [];
  private readonly references = new Map<string, Promise<Record<string, unknown>>>();

  constructor(private readonly tag: string) {
    this.tmp = mkdtempSync(join(tmpdir(), `gradq-${tag}-`));
  }

  /** A fresh queue name for one test, cleaned up afterwards. */
  queue(): string {
    const q = `test-${this.tag}-${randomUUID().slice(0, 8)}`;
    this.queues.push(q);
    return q;
  }

  /** The --json summary of `gradq train --local ARGS…` (run once for each `args`). */
  local(args: readonly string[]): Promise<Record<string, unknown>> {
    const key = args.join(' ');
    let summary = this.references.get(key);
    if (summary === undefined) {
      summary = runCli(['train', '--local', ...args]).then((r) => {
        expect(r.code, r.stderr).toBe(0);
        return lastJson(r.stdout);
      });
      this.references.set(key, summary);
    }
    return summary;
  }

  /** The params_sha256 of `gradq train --local ARGS…` (run once for each `args`). */
  async localHash(args: readonly string[]): Promise<string> {
    return (await this.local(args)).params_sha256 as string;
  }

  /** The highest parameter version a run has published on `queue` (-1 before the first). */
  publishedStep(queue: string): Promise<number> {
    return publishedStep(this.redis, queue);
  }

  /** Kills the children left running, removes the test queues and their keys, the directory, and the connection. */
  async cleanUp(): Promise<void> {
    killLeftoverChildren();
    for (const q of this.queues) {
      await new Queue(q, { connection: this.redis, prefix: QUEUE_PREFIX }).obliterate({ force: true });
      await deleteKeysWithPrefix(this.redis, `${QUEUE_PREFIX}:${q}:`);
    }
    await this.redis.quit();
    rmSync(this.tmp, { recursive: true, force: true });
  }
}

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

/**
 * Freezes `worker`, the only worker of `queue`, once `coordinator`'s run has published step `step`, at a moment it
 * holds a shard (freezeHoldingShard): the caller starts another worker and then kills this one mid-shard.
 */
export async function freezeMidRun(
  redis: Redis,
  queue: string,
  worker: ChildProcess,
  coordinator: ReturnType<typeof spawnCli>,
  step: number,
): Promise<void> {
  await waitFor(`step ${step}`, async () => (await publishedStep(redis, queue)) >= step);
  let finished = false;
  void coordinator.done.then(() => (finished = true));
  const jobs = new Queue(queue, { connection: redis, prefix: QUEUE_PREFIX });
  try {
    await freezeHoldingShard(worker, jobs, () => finished);
  } finally {
    await jobs.close();
  }
}

/** The training split every worker uses, loaded once. */
export async function honestTrainSplit(): Promise<Split> {
  return (await loadDataset('mnist', { dataDir: SHARED_DATA })).train;
}

/**
 * The tensor under `key` as a worker on this machine reads it: from the coordinator's shared memory when Redis holds a
 * pointer to it (--shm auto), else Redis's bytes (null when there are none).
 */
export async function storedTensor(redis: Redis, key: string): Promise<Buffer | null> {
  const stored = await redis.getBuffer(key);
  const pointer = stored && decodePointer(stored);
  if (!pointer) return stored;
  const bytes = Buffer.alloc(pointer.length);
  readSlot(pointer.dir, pointer.slot, pointer.length, bytes);
  return bytes;
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
  decodeParamsInto(await storedTensor(redis, job.paramsKey), model.params, job.paramsKey, signer);
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

/**
 * What an honest worker computes for a local SGD round job, with libs/train's replicaRound directly (θ and the
 * replicas' states read from `redis`): for each replica of the job, its RoundResult (worker 'evil') and payload
 * (Δ_k, then the state's buffers).
 */
export async function honestRound(
  redis: Redis,
  job: RoundJob,
  fullTrain: Split,
): Promise<Array<{ result: RoundResult; payload: Float32Array }>> {
  const train = limitSamples(fullTrain, job.trainSamples);
  const { model, optimizer } = makeReplicaFrom(replicaSpecFor(job));
  const n = model.params.length;
  const theta = new Float32Array(n);
  decodeParamsInto(await storedTensor(redis, job.paramsKey), theta, job.paramsKey);
  const steps = roundSteps(job.trainSamples, job.batch, job.shards, job.seed, job.step, job.step + job.steps);
  const answers: Array<{ result: RoundResult; payload: Float32Array }> = [];
  for (let i = 0; i < job.replicas; i++) {
    const shard = job.shard + i;
    const saved = new Float32Array(job.stateBuffers * n);
    if (job.stateBuffers > 0) decodeParamsInto(await storedTensor(redis, job.stateKeys[i]), saved, job.stateKeys[i]);
    const buffers = Array.from({ length: job.stateBuffers }, (_, b) => saved.subarray(b * n, (b + 1) * n));
    const state = { ...optimizer.getState(), t: job.stateTs[i], buffers };
    const r = replicaRound(model, optimizer, train, steps, shard, theta, state, new ShardInputs(), { seed: job.seed, shift: job.shift });
    const payload = new Float32Array((1 + job.stateBuffers) * n);
    payload.set(r.delta);
    r.state.buffers.forEach((b, j) => payload.set(b, (j + 1) * n));
    const count = steps.reduce((c, p) => c + p.shards[shard][1] - p.shards[shard][0], 0);
    const result: RoundResult = {
      v: 1, kind: 'round', run: job.run, step: job.step, shard, through: shard, attempt: job.attempt, count,
      lossSum: r.lossSum, correct: r.correct, worker: 'evil', fetchMs: 0, computeMs: 0, uploadMs: 0, steps: r.steps, stateT: r.state.t,
    }; // prettier-ignore
    answers.push({ result, payload });
  }
  return answers;
}
