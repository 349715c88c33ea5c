import {
  encodeParams,
  KEY_TTL_MS,
  ROUND_JOB_NAME,
  shardJobId,
  signRoundJob,
  type MessageSigner,
  type RoundJob,
  type RunKeys,
  type ShardJob,
  type ShardResult,
  type TensorStore,
} from '@gradq/cluster';
import type { OptimizerState } from '@gradq/nn';
import type { ReplicaSpec, StepPlan } from '@gradq/train';
import type { Queue } from 'bullmq';
import type { Lease, LeaseSet } from './lease-book.js';
import { jobOptimizer, type LeaseJobSpec, type RunDescriptor, type StepPublisher } from './step-publisher.js';
import type { TensorRetry } from './tensor-retry.js';

/** What every round job of a local SGD run shares besides the RunDescriptor: the batch plan and the inner optimizer. */
export interface RoundDescriptor {
  /** H: inner steps a round (the last round of an epoch may have fewer). */
  h: number;
  batch: number;
  shards: number;
  epochs: number;
  replica: ReplicaSpec;
  /** Buffers of the inner optimizer's state (0 for plain SGD, 1 for momentum, 2 for Adam). */
  stateBuffers: number;
}

/** One round as the cluster runs it: its steps (of one epoch) and the K replicas' inner states it starts from. */
export interface RoundPlan {
  steps: readonly StepPlan[];
  states: readonly OptimizerState[];
}

/** One attempt at a replica of a round, as BullMQ's add takes it. */
export interface RoundJobSpec {
  name: typeof ROUND_JOB_NAME;
  data: RoundJob;
  opts: { jobId: string; removeOnComplete: true; removeOnFail: true };
}

/** What replica k of a round must report: samples, inner steps, and the inner step counter at its end. */
export function replicaWork(round: RoundPlan, k: number): { count: number; steps: number; stateT: number } {
  let count = 0;
  let steps = 0;
  let stateT = round.states[k].t;
  for (const plan of round.steps) {
    const [start, end] = plan.shards[k];
    if (end === start) continue;
    count += end - start;
    steps++;
    stateT = plan.globalStep + 1;
  }
  return { count, steps, stateT };
}

/**
 * Puts a local SGD round where the workers find it: θ of the round (under the params key of its first step, through
 * the StepPublisher), each replica's inner optimizer state (state key), then the round jobs (see firstJobs). With the
 * run's secret, all are signed. Job ids share the synchronous ones' scheme (run.step.shard.attempt: a round is
 * named by its first step, and a run is either synchronous or local).
 */
export class RoundPublisher {
  /** Each replica's state buffers one after the other, as written (one array per replica: the writes overlap). */
  private readonly scratch: Float32Array[] = [];
  /** The state keys written and not dropped yet, with the first step of their round. */
  private readonly live = new Map<string, number>();

  constructor(
    private readonly tensors: TensorStore,
    private readonly queue: Queue<ShardJob, ShardResult[]>,
    private readonly keys: RunKeys,
    private readonly run: RunDescriptor,
    private readonly rounds: RoundDescriptor,
    private readonly steps: StepPublisher,
    private readonly retry: TensorRetry,
    private readonly signer?: MessageSigner,
  ) {}

  /** The job of attempt `attempt` at replicas `shard`..`shard + replicas - 1` of the round. */
  job(round: RoundPlan, shard: number, attempt: number, replicas = 1): RoundJobSpec {
    const first = round.steps[0].globalStep;
    const { replica, stateBuffers } = this.rounds;
    const ks = Array.from({ length: replicas }, (_, i) => shard + i);
    const data: RoundJob = {
      v: 2, kind: 'round', run: this.keys.runId, step: first, steps: round.steps.length, shard, replicas, shards: this.rounds.shards, attempt,
      dataset: this.run.dataset, trainSamples: this.run.trainSamples, seed: this.run.seed, batch: this.rounds.batch,
      model: this.run.model, shift: this.run.shift, ...jobOptimizer(replica, this.rounds.epochs), paramsKey: this.keys.params(first),
      stateKeys: ks.map((k) => (stateBuffers > 0 ? this.keys.state(first, k) : '')), stateBuffers, stateTs: ks.map((k) => round.states[k].t),
      resultsKey: this.keys.results,
    }; // prettier-ignore
    return {
      name: ROUND_JOB_NAME,
      data: this.signer ? signRoundJob(data, this.signer) : data,
      opts: { jobId: shardJobId(this.keys.runId, first, shard, attempt), removeOnComplete: true, removeOnFail: true },
    };
  }

  /**
   * Attempt 0 of every replica, `perJob` consecutive replicas a job (fewer in the last one; a replica whose shards
   * are all empty still answers: Δ = 0, 0 steps).
   */
  firstJobs(round: RoundPlan, perJob = 1): RoundJobSpec[] {
    const jobs: RoundJobSpec[] = [];
    const count = round.states.length; // K
    for (let shard = 0; shard < count; shard += perJob) jobs.push(this.job(round, shard, 0, Math.min(perJob, count - shard)));
    return jobs;
  }

  /**
   * Writes θ and the replicas' states of the round (dropping θ of the round that started at `previous` and the
   * states of earlier rounds), then
   * adds `jobs` in one round trip: Redis has them before any worker sees a job. `params` must not change first.
   */
  async publish(round: RoundPlan, params: Float32Array, jobs: RoundJobSpec[], previous: number): Promise<void> {
    const first = round.steps[0].globalStep;
    // θ and the K states in one go: the writes are pipelined on the tensor connection.
    await Promise.all([
      this.steps.writeParams(first, params, previous),
      ...round.states.map((_, k) => this.writeState(round, k)),
      this.dropStates(first),
    ]);
    // The queue carries both kinds of job; its type names the synchronous one (BullMQ takes any JSON data).
    await this.queue.addBulk(jobs as unknown as Parameters<typeof this.queue.addBulk>[0]);
  }

  /**
   * The round lease `lease` of set `set` (lease-book.ts, set.first: the first step of the round it starts with):
   * its replicas' rounds over the set's steps, from their states of that round (written by publishLeased).
   */
  leaseJob(round: RoundPlan, set: LeaseSet, lease: Lease): LeaseJobSpec {
    const first = round.steps[0].globalStep;
    const { h, batch, epochs, replica, shards, stateBuffers } = this.rounds;
    const ks = Array.from({ length: lease.count }, (_, i) => lease.shard + i);
    const stateKeys = ks.map((k) => (stateBuffers > 0 ? this.keys.state(first, k) : ''));
    const stateTs = ks.map((k) => round.states[k].t);
    return this.steps.leaseJob(set, lease, shards, { batch, epochs, replica }, undefined, { rounds: h, stateKeys, stateTs, stateBuffers });
  }

  /**
   * A round of leased replicas (lease set `set`): θ of the round written and the round announced to the set's
   * holders (StepPublisher.publishLeased), dropping θ and the states of earlier rounds; for a new set (`leases`, its
   * jobs), the replicas' states are written first, since its holders start from them. The states are not written
   * for the other rounds: each holder keeps its replicas' own (and add() writes one that a recomputation needs).
   */
  async publishLeased(round: RoundPlan, params: Float32Array, set: number, leases: LeaseJobSpec[], previous: number): Promise<void> {
    const first = round.steps[0].globalStep;
    if (leases.length > 0) await Promise.all(round.states.map((_, k) => this.writeState(round, k)));
    await Promise.all([this.steps.publishLeased(first, params, set, leases, undefined, previous), this.dropStates(first)]);
  }

  /** Adds one more job: a new attempt at a replica, whose state of the round is written first if it is not there. */
  async add(round: RoundPlan, job: RoundJobSpec): Promise<void> {
    const key = this.keys.state(round.steps[0].globalStep, job.data.shard);
    if (this.rounds.stateBuffers > 0 && !this.live.has(key)) await this.writeState(round, job.data.shard);
    await this.queue.add(job.name as 'shard', job.data as unknown as ShardJob, job.opts);
  }

  /** Writes θ and the states of the round again if θ is gone (a Redis restarted empty); true when it had to. */
  async restore(round: RoundPlan, params: Float32Array): Promise<boolean> {
    const first = round.steps[0].globalStep;
    if (!(await this.steps.restoreParams(first, params))) return false;
    await Promise.all(round.states.map((_, k) => this.writeState(round, k)));
    return true;
  }

  /** Unlinks the states written for rounds other than the one starting at `first`. */
  private async dropStates(first: number): Promise<void> {
    const stale = [...this.live].filter(([, f]) => f !== first).map(([key]) => key);
    for (const key of stale) this.live.delete(key);
    await this.retry.untilDone(`round ${first}: dropping the states of earlier rounds`, () =>
      Promise.all(stale.map((key) => this.tensors.unlink(key))),
    );
  }

  /** Replica k's state buffers, one after the other, under its state key of the round (nothing without buffers). */
  private async writeState(round: RoundPlan, k: number): Promise<void> {
    const { buffers } = round.states[k];
    if (buffers.length === 0) return;
    const n = buffers[0].length;
    if (this.scratch[k]?.length !== buffers.length * n) this.scratch[k] = new Float32Array(buffers.length * n);
    const all = this.scratch[k];
    buffers.forEach((b, i) => all.set(b, i * n));
    const first = round.steps[0].globalStep;
    const key = this.keys.state(first, k);
    const bytes = encodeParams(all, this.signer && { key, signer: this.signer });
    await this.retry.untilDone(`round ${first}: writing replica ${k}'s state`, () => this.tensors.set(key, bytes, KEY_TTL_MS));
    this.live.set(key, first);
  }
}
