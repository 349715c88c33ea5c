import {
  clockFields,
  encodeParams,
  LEASE_JOB_NAME,
  signLeaseJob,
  type JobOptimizer,
  type LeaseJob,
  KEY_TTL_MS,
  shardJobId,
  signShardJob,
  type MessageSigner,
  type RunKeys,
  type ShardJob,
  type ShardResult,
  type TensorStore,
} from '@gradq/cluster';
import type { Queue } from 'bullmq';
import type { GradientCodec, Optimizer } from '@gradq/nn';
import { keepsResidual, type ReplicaSpec, type StepPlan } from '@gradq/train';
import { GaveUpError } from './gave-up-error.js';
import type { Lease, LeaseSet } from './lease-book.js';
import type { ShardResidualKeys } from './shard-residuals.js';
import type { TensorRetry } from './tensor-retry.js';

/** What every shard job of the run shares. */
export interface RunDescriptor {
  dataset: string;
  trainSamples: number;
  seed: number;
  model: string;
  /** Largest image shift of the run's augmentation (0: none). */
  shift: number;
  /** How workers encode shard gradient sums (--compress). */
  codec: GradientCodec;
}

/** One attempt at a shard, as BullMQ's add takes it. */
export interface ShardJobSpec {
  name: 'shard';
  data: ShardJob;
  opts: { jobId: string; removeOnComplete: true; removeOnFail: true };
}

/** A step lease, as BullMQ's add takes it. */
export interface LeaseJobSpec {
  name: typeof LEASE_JOB_NAME;
  data: LeaseJob;
  opts: { jobId: string; removeOnComplete: true; removeOnFail: true };
}

/** The run's optimizer as its jobs carry it: round jobs' inner optimizer, a stepping lease's. */
export function jobOptimizer(replica: ReplicaSpec, epochs: number): JobOptimizer {
  const { optimizer, lr, schedule, warmup, momentum, weightDecay } = replica;
  return { optimizer, lr, schedule, warmup, momentum, weightDecay, epochs };
}

/**
 * Where a stepping lease starts (lease-job.ts): the optimizer's state at the set's first step, encoded (signed with
 * the run's secret) for its key; no bytes when the optimizer keeps no buffers (plain SGD).
 */
export interface OptimizerStart {
  key: string;
  bytes?: Uint8Array;
  buffers: number;
  t: number;
}

/**
 * Puts a step where the workers find it: θ_t on the tensor connection, the shard jobs on the queue. With the run's
 * secret (`signer`), both are signed.
 */
export class StepPublisher {
  /** The optimizer state the last stepping lease started from (dropped when the next one is written). */
  private stateKey: string | undefined;

  constructor(
    private readonly tensors: TensorStore,
    private readonly queue: Queue<ShardJob, ShardResult[]>,
    private readonly keys: RunKeys,
    private readonly run: RunDescriptor,
    private readonly retry: TensorRetry,
    private readonly signer?: MessageSigner,
    /** --compress int8: which residual each shard's job reads. */
    private readonly residuals?: ShardResidualKeys,
  ) {}

  /** The job of attempt `attempt` at shards `shard`..`shard + count - 1` of the step. */
  job(plan: StepPlan, shard: number, attempt: number, count = 1): ShardJobSpec {
    const [start] = plan.shards[shard];
    const [, end] = plan.shards[shard + count - 1];
    const cuts = plan.shards.slice(shard + 1, shard + count).map(([cut]) => cut);
    const shards = Array.from({ length: count }, (_, i) => shard + i);
    const feedback = keepsResidual(this.run.codec);
    if (feedback && !this.residuals) throw new Error(`StepPublisher: codec ${this.run.codec} needs the shards' residual keys`);
    const residualIn = feedback ? shards.map((k) => this.residuals?.in(k) ?? '') : [];
    const residualOut = feedback ? shards.map((k) => this.residuals?.out(plan.globalStep, k, attempt) ?? '') : [];
    const data: ShardJob = {
      v: 5, run: this.keys.runId, step: plan.globalStep, shard, attempt, ...this.run, epoch: plan.epoch, start, end, cuts,
      paramsKey: this.keys.params(plan.globalStep), resultsKey: this.keys.results, residualIn, residualOut,
    }; // prettier-ignore
    const jobId = shardJobId(this.keys.runId, plan.globalStep, shard, attempt);
    return {
      name: 'shard',
      data: this.signer ? signShardJob(data, this.signer) : data,
      opts: { jobId, removeOnComplete: true, removeOnFail: true },
    };
  }

  /**
   * Attempt 0 of the step's shards, `shardsPerJob` consecutive shards a job (fewer in the last one); a job whose
   * shards are all empty (a last, partial batch may have empty shards) is left out.
   */
  firstJobs(plan: StepPlan, shardsPerJob = 1): ShardJobSpec[] {
    const jobs: ShardJobSpec[] = [];
    for (let k = 0; k < plan.shards.length; k += shardsPerJob) {
      const count = Math.min(shardsPerJob, plan.shards.length - k);
      if (plan.shards[k + count - 1][1] > plan.shards[k][0]) jobs.push(this.job(plan, k, 0, count));
    }
    return jobs;
  }

  /**
   * The job of lease `lease` of set `set` (lease-book.ts): its shards over the set's steps [first, end), for a run
   * of `shards` shards a step and the batch and optimizer of `run`; a stepping lease when it is given its `start`, a
   * round lease (local SGD: its replicas' rounds) when it is given `rounds`.
   */
  leaseJob(
    set: LeaseSet,
    lease: Lease,
    shards: number,
    run: { batch: number; epochs: number; replica: ReplicaSpec },
    start?: OptimizerStart,
    rounds?: Pick<LeaseJob, 'rounds' | 'stateKeys' | 'stateTs' | 'stateBuffers'>,
  ): LeaseJobSpec {
    const data: LeaseJob = {
      v: 3, kind: 'lease', run: this.keys.runId, step: set.first, steps: set.end - set.first, shard: lease.shard, count: lease.count,
      shards, attempt: 0, set: set.set, dataset: this.run.dataset, trainSamples: this.run.trainSamples, seed: this.run.seed,
      batch: run.batch, model: this.run.model, shift: this.run.shift, codec: this.run.codec, paramsPrefix: this.keys.paramsPrefix,
      clockKey: this.keys.clock, resultsKey: this.keys.results, stepping: start !== undefined,
      stateKey: start?.bytes ? start.key : '', stateBuffers: start?.buffers ?? 0, stateT: start?.t ?? 0,
      ...jobOptimizer(run.replica, run.epochs), rounds: 0, stateKeys: [], stateTs: [], ...rounds,
    }; // prettier-ignore
    return {
      name: LEASE_JOB_NAME,
      data: this.signer ? signLeaseJob(data, this.signer) : data,
      opts: { jobId: lease.id, removeOnComplete: true, removeOnFail: true },
    };
  }

  /** The start of a stepping lease whose first step is `step`: `optimizer`'s state now (its buffers copied). */
  optimizerStart(step: number, optimizer: Optimizer): OptimizerStart {
    const state = optimizer.getState();
    const key = this.keys.optimizer(step);
    if (state.buffers.length === 0) return { key, buffers: 0, t: state.t };
    const n = state.buffers[0].length;
    const all = new Float32Array(state.buffers.length * n);
    state.buffers.forEach((b, i) => all.set(b, i * n));
    return { key, bytes: encodeParams(all, this.signer && { key, signer: this.signer }), buffers: state.buffers.length, t: state.t };
  }

  /**
   * A step of leased shards: writes θ_t (and a stepping lease's optimizer state, `start`) and announces step t to
   * the holders of lease set `set` (on one connection in one write: Redis has θ_t before any holder hears of the
   * step; on a Redis Cluster, once θ_t is written), then adds `leases` (a new set's) to the queue. `params` must
   * not change before this resolves. θ of step `previous` is dropped (a local SGD round's: that of the round before).
   */
  async publishLeased(
    step: number,
    params: Float32Array,
    set: number,
    leases: LeaseJobSpec[],
    start?: OptimizerStart,
    previous = step - 1,
  ): Promise<void> {
    const key = this.keys.params(step);
    const bytes = encodeParams(params, this.signer && { key, signer: this.signer });
    const previousState = start?.bytes ? this.stateKey : undefined;
    await this.retry.untilDone(`step ${step}: writing θ`, async () => {
      const written = Promise.all([
        this.tensors.set(key, bytes, KEY_TTL_MS),
        previous >= 0 ? this.tensors.unlink(this.keys.params(previous)) : undefined,
        start?.bytes ? this.tensors.set(start.key, start.bytes, KEY_TTL_MS) : undefined,
        previousState !== undefined && previousState !== start?.key ? this.tensors.unlink(previousState) : undefined,
      ]);
      if (!this.tensors.ordered) await written;
      await Promise.all([written, this.announce(step, set, false)]);
    });
    if (start?.bytes) this.stateKey = start.key;
    if (leases.length > 0) await this.queue.addBulk(leases as unknown as ShardJobSpec[]);
  }

  /**
   * Tells the holders of lease set `set` that it ends with step `step` (clock-entry.ts: they compute the step if
   * they owe it, then end their leases): a lease of it was handed back or lost, or the run ended. Once, without
   * retrying: holders that miss it hand their leases back when no step comes.
   */
  async endLeaseSet(step: number, set: number): Promise<void> {
    await this.announce(step, set, true);
  }

  private announce(step: number, set: number, last: boolean): Promise<void> {
    return this.tensors.announce(this.keys.clock, clockFields({ step, set, last }, this.keys.clock, this.signer), KEY_TTL_MS);
  }

  /**
   * Writes θ_t, then adds `jobs` in one round trip: Redis has θ_t before any worker can see a job. `params` must
   * not change before this resolves (they are written as they are).
   */
  async publish(step: number, params: Float32Array, jobs: ShardJobSpec[]): Promise<void> {
    await this.writeParams(step, params);
    await this.queue.addBulk(jobs);
  }

  /**
   * Writes θ_t and drops the previous version (θ_{t-1}; a local SGD round's, that of the round before), both again
   * after a lost connection until they go through.
   */
  async writeParams(step: number, params: Float32Array, previous = step - 1): Promise<void> {
    const key = this.keys.params(step);
    const bytes = encodeParams(params, this.signer && { key, signer: this.signer });
    await this.retry.untilDone(`step ${step}: writing θ`, () =>
      Promise.all([this.tensors.set(key, bytes, KEY_TTL_MS), previous >= 0 ? this.tensors.unlink(this.keys.params(previous)) : undefined]),
    );
  }

  /**
   * Writes θ_t again if it is gone from Redis (a Redis restarted empty, a flush); true when it had to. Nothing is
   * written when the check itself fails (the connection is down): the next check sees.
   */
  async restoreParams(step: number, params: Float32Array): Promise<boolean> {
    const there = await this.retry.once(`step ${step}: checking θ`, () => this.tensors.get(this.keys.params(step), () => 'skip'));
    if (there !== null) return false; // there (its bytes skipped unread), or not known
    await this.writeParams(step, params);
    return true;
  }

  /**
   * Throws GaveUpError when the residual that shard `shard`'s jobs read (--compress int8) cannot be read from Redis
   * (it expired, was deleted or overwritten, or Redis restarted empty): no attempt can compute the shard's bits
   * without it, so recomputing would never end. Nothing is thrown when the check itself fails (connection down).
   */
  async checkResidual(step: number, shard: number): Promise<void> {
    const residuals = this.residuals;
    if (!residuals) return;
    const why = await this.retry.once(`step ${step}: checking shard ${shard}'s residual`, () => residuals.unreadable(this.tensors, shard));
    if (why === null || why === undefined) return; // readable, or not known
    throw new GaveUpError(
      `step ${step} shard ${shard}: ${why}; no attempt can compute the shard without its error-feedback residual, gave up ` +
        `(resume from the last checkpoint, which holds the residuals: the same command with --resume)`,
    );
  }

  /** Adds one more job: a new attempt at a shard. */
  async add(job: ShardJobSpec): Promise<void> {
    await this.queue.add(job.name, job.data, job.opts);
  }

  /**
   * Removes the jobs of attempts that were not needed, those still waiting: an active one finishes, and its
   * result is ignored.
   */
  async withdraw(jobIds: Iterable<string>): Promise<void> {
    for (const jobId of jobIds) await this.queue.remove(jobId).catch(() => 0);
  }
}
