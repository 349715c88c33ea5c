import {
  deleteKeysWithPrefix,
  SharedMemoryTensors,
  type MessageSigner,
  type RunKeys,
  type ShardJob,
  type ShardResult,
  type TensorStore,
} from '@gradq/cluster';
import type { Queue } from 'bullmq';
import type { Cluster, Redis } from 'ioredis';
import type { Optimizer, OptimizerState } from '@gradq/nn';
import { stepsPerEpoch } from '@gradq/data';
import {
  keepsResidual,
  residualBytes,
  type GradientSource,
  type ReplicaResult,
  type ReplicaSpec,
  type ShardResiduals,
  type StepPlan,
  type StepStats,
} from '@gradq/train';
import { ShardResidualKeys } from './shard-residuals.js';
import { settlesWithin, untilAborted } from './bounded-wait.js';
import { ClusterTimer, type ClusterTimings, type StepPhases } from './cluster-timings.js';
import { InterruptedError, type StopSignal } from './interrupted-error.js';
import { ConnectedWorkers, shardsPerJob } from './job-grouping.js';
import { AUTO_LEASE_STEPS, LeaseBook } from './lease-book.js';
import { ResultInbox } from './result-inbox.js';
import { StepGather, type ClusterCounters, type GatherContext } from './step-gather.js';
import { StepPublisher, type RunDescriptor } from './step-publisher.js';
import { RoundGather } from './round-gather.js';
import { RoundPublisher, type RoundDescriptor } from './round-publisher.js';
import { TensorRetry } from './tensor-retry.js';
import { WorkerRoster } from './worker-roster.js';

/** How long a failed or interrupted step may take to withdraw its queued jobs (Redis may be down). */
const WITHDRAW_MS = 3000;

/**
 * Step leases (lease-book.ts) for a synchronous run: the run's batch and epochs, steps a set holds at most (0:
 * auto), and its optimizer as a ReplicaSpec. With the trainer's `optimizer` (read, never changed here), a lease of
 * every shard is a stepping lease (lease-job.ts), which starts from that optimizer's state.
 */
export interface LeaseOptions {
  batch: number;
  maxSteps: number;
  epochs: number;
  replica: ReplicaSpec;
  optimizer?: Optimizer;
}

/** How the source stops: on its own after a time without results, or when told to. */
export interface StopOptions {
  /** A step gives up after this long without a valid result while no worker is responsive (GaveUpError). */
  giveUpMs: number;
  /** Aborted with the signal's name (StopSignal) when the run is interrupted: step() throws InterruptedError. */
  signal?: AbortSignal;
}

/**
 * Reads each cluster step as it ends (the dashboard): its phases and the results taken, one per shard (undefined
 * for an empty shard). Both are valid during the call only; an observer copies what it keeps and never steers.
 */
export interface ClusterStepObserver {
  stepGathered(step: number, phases: Readonly<StepPhases>, results: ReadonlyArray<ShardResult | undefined>): void;
}

/**
 * The gradient source of the cluster. Per step: write θ_t and add the step's shard jobs (StepPublisher), then
 * gather the results as workers push them, adding the shards' gradients into the sum in shard order (StepGather).
 * θ and the results travel on `tensors` (a lean connection: see TensorConnection), whose lost connections are
 * retried (TensorRetry); the jobs travel on BullMQ's.
 */
export class ClusterGradientSource implements GradientSource {
  readonly counters: ClusterCounters = { duplicates: 0, rejected: 0, recomputed: 0, failed: 0, late: 0 };
  private readonly timer = new ClusterTimer();
  private readonly publisher: StepPublisher;
  private readonly context: GatherContext;
  private readonly workers: ConnectedWorkers;
  private readonly observers: ClusterStepObserver[] = [];
  /**
   * Local SGD (--sync local:H): the round publisher, two sets of result buffers (one per replica; rounds take
   * turns, so that the replicas' states a round adopted, views of its set, are not overwritten by the next round's
   * results), the turn, and the last round's first step.
   */
  private readonly rounds?: { publisher: RoundPublisher; payloads: [Float32Array[], Float32Array[]]; turn: number; previous: number };
  /** --compress int8: where each shard's residual is. */
  private readonly residuals?: ShardResidualKeys;
  /**
   * Step leases, when the steps are leased (no residuals, --lease-steps other than 1); a local SGD run's rounds
   * are leased (round leases) by the same book.
   */
  private readonly leases?: { book: LeaseBook; perEpoch: number; options: LeaseOptions };
  /** The step begun last (-1: none yet). */
  private lastStep = -1;
  /** How long the last step took (ms), for the length of the next lease set. */
  private lastStepMs = Number.POSITIVE_INFINITY;
  /** Gradient (local SGD: Δ and state) payload bytes kept, summed over the global steps (for bytes_per_step). */
  private gradientBytes = 0;
  private steps = 0;
  /** Shards a step has (for residualState). */
  private shards = 0;
  private readonly retry: TensorRetry;

  /**
   * `tensors` is a connection of its own: it writes θ, then waits in BLPOP for the results. With the run's secret
   * (`signer`), jobs and θ are signed and only signed results are read.
   */
  constructor(
    private readonly redis: Redis | Cluster,
    private readonly tensors: TensorStore,
    queue: Queue<ShardJob, ShardResult[]>,
    private readonly keys: RunKeys,
    run: RunDescriptor,
    private readonly paramCount: number,
    log: (line: string) => void,
    stop: StopOptions,
    signer?: MessageSigner,
    /** For a local SGD run: what its round jobs share. */
    rounds?: RoundDescriptor,
    /** For a synchronous run whose steps are leased. */
    leases?: LeaseOptions,
  ) {
    this.workers = new ConnectedWorkers(queue);
    const retry = new TensorRetry(log, stop.signal);
    this.retry = retry;
    if (keepsResidual(run.codec)) this.residuals = new ShardResidualKeys(keys, residualBytes(paramCount), signer);
    this.publisher = new StepPublisher(tensors, queue, keys, run, retry, signer, this.residuals);
    if (rounds) {
      const publisher = new RoundPublisher(tensors, queue, keys, run, rounds, this.publisher, retry, signer);
      this.rounds = { publisher, payloads: [[], []], turn: 0, previous: -1 };
    }
    // A local SGD run's rounds are leased as its steps would be (round leases: lease-job.ts).
    if (leases && !keepsResidual(run.codec) && (!rounds || run.codec === 'none')) {
      // With --lease-steps 0, a set of round leases holds up to AUTO_LEASE_STEPS rounds: each new set costs its
      // holders a start.
      const book = new LeaseBook(keys.runId, leases.maxSteps, AUTO_LEASE_STEPS * (rounds?.h ?? 1));
      this.leases = { book, perEpoch: stepsPerEpoch(run.trainSamples, leases.batch), options: leases };
    }
    // A round result carries Δ and the replica's state buffers: (1 + stateBuffers) × paramCount values.
    const inbox = new ResultInbox(tensors, keys.results, paramCount * (1 + (rounds?.stateBuffers ?? 0)), retry);
    this.context = {
      runId: keys.runId, queue, publisher: this.publisher, inbox, grads: [], counters: this.counters, roster: new WorkerRoster(),
      giveUpMs: stop.giveUpMs, signal: stop.signal, log, signer, codec: run.codec,
      sharedMemory: tensors instanceof SharedMemoryTensors ? tensors : undefined, leases: this.leases?.book,
    }; // prettier-ignore
  }

  /** Tells `observer` about every step gathered from now on. */
  observe(observer: ClusterStepObserver): void {
    this.observers.push(observer);
  }

  /** Where a step's time went, summed over the steps after the first. */
  get timings(): ClusterTimings {
    return this.timer.totals;
  }

  /**
   * One step. Interrupted (the signal aborts), it throws InterruptedError at once, even while Redis is down; a
   * step that fails or is interrupted first withdraws its jobs still queued (for at most WITHDRAW_MS).
   */
  async step(plan: StepPlan, params: Float32Array, sum: Float32Array): Promise<StepStats> {
    const signal = this.context.signal;
    if (signal?.aborted) throw new InterruptedError(signal.reason as StopSignal, plan.globalStep);
    const t0 = performance.now();
    const grads = this.context.grads;
    this.shards = Math.max(this.shards, plan.shards.length);
    while (grads.length < plan.shards.length) grads.push(new Float32Array(this.paramCount));
    let t1 = t0;
    const gather = new StepGather(plan, params, sum, this.context);
    try {
      const workers = await untilAborted(this.workers.current(), signal);
      this.lastStep = plan.globalStep;
      if (this.leases) {
        const { book, perEpoch, options } = this.leases;
        const K = plan.shards.length;
        const { set, made, replaced } = book.forStep(plan.globalStep, K, perEpoch, workers, this.lastStepMs);
        gather.expectLeased(set);
        // One lease of every shard, uncompressed: its holder steps θ itself, from the optimizer's state now (before
        // this step). (A compressed sum is the shards' decoded values added here: that holder would not have it.)
        const { optimizer } = options;
        const stepping = made && set.leases.length === 1 && this.context.codec === 'none';
        const start = stepping && optimizer ? this.publisher.optimizerStart(set.first, optimizer) : undefined;
        const added = made ? set.leases.map((lease) => this.publisher.leaseJob(set, lease, K, options, start)) : [];
        await untilAborted(this.publisher.publishLeased(plan.globalStep, params, set.set, added, start), signal);
        // The set before this one holds no step any more: a lease of it still queued would only wait for a worker.
        if (replaced.length > 0) await untilAborted(this.publisher.withdraw(replaced), signal);
      } else {
        const jobs = this.publisher.firstJobs(plan, shardsPerJob(plan.shards.length, workers));
        gather.expect(jobs);
        await untilAborted(this.publisher.publish(plan.globalStep, params, jobs), signal);
      }
      t1 = performance.now();
      await untilAborted(gather.collect(), signal);
    } catch (e) {
      // The run ends here: no worker is to compute what is left of the step.
      await settlesWithin(gather.withdrawAll(), WITHDRAW_MS).catch(() => false);
      throw signal?.aborted ? new InterruptedError(signal.reason as StopSignal, plan.globalStep) : e;
    }
    const t2 = performance.now();
    await gather.finish();
    this.gradientBytes += gather.gradientBytes;
    this.steps++;
    if (this.residuals) await this.moveResiduals(plan.globalStep, gather.shardResults);
    const stats = gather.stats();
    this.timer.addStep(gather.shardResults, {
      publish: t1 - t0,
      gather: t2 - t1,
      aggregate: gather.aggregateMs + (performance.now() - t2),
    });
    for (const o of this.observers) o.stepGathered(plan.globalStep, this.timer.last, gather.shardResults);
    this.lastStepMs = performance.now() - t0;
    return stats;
  }

  /**
   * One local SGD round: θ and the replicas' states written, round jobs of ⌈K/N⌉ replicas for N workers (or, with
   * leases, θ written and the round announced to the holders of round leases of ⌈K/N⌉ replicas), the results gathered as step() gathers shards (RoundGather: the same checks, recomputation, watchdog and giving up); returns the
   * replicas' results in shard order for LocalRounds to add and adopt. Interrupted or failing, as step().
   */
  async round(steps: readonly StepPlan[], theta: Float32Array, states: readonly OptimizerState[]): Promise<ReplicaResult[]> {
    const first = steps[0].globalStep;
    if (!this.rounds) throw new Error('this cluster run was started for synchronous steps, not local SGD rounds');
    const signal = this.context.signal;
    if (signal?.aborted) throw new InterruptedError(signal.reason as StopSignal, first);
    const { publisher } = this.rounds;
    const payloads = this.rounds.payloads[(this.rounds.turn ^= 1)];
    const floats = this.paramCount * (1 + (states[0]?.buffers.length ?? 0));
    while (payloads.length < states.length) payloads.push(new Float32Array(floats));
    const round = { steps, states };
    const t0 = performance.now();
    let t1 = t0;
    const gather = new RoundGather(round, theta, this.context, publisher, payloads);
    try {
      const workers = await untilAborted(this.workers.current(), signal);
      this.lastStep = first;
      if (this.leases) {
        // Round leases of ⌈K/N⌉ replicas: a set's holders keep their replicas' states from round to round.
        const { book, perEpoch } = this.leases;
        const { set, made, replaced } = book.forStep(first, states.length, perEpoch, workers, this.lastStepMs);
        gather.expectLeased(set);
        const added = made ? set.leases.map((lease) => publisher.leaseJob(round, set, lease)) : [];
        await untilAborted(publisher.publishLeased(round, theta, set.set, added, this.rounds.previous), signal);
        if (replaced.length > 0) await untilAborted(this.publisher.withdraw(replaced), signal);
      } else {
        // As a step's shards: at most one job a worker (its replicas one after the other, θ fetched once).
        const jobs = publisher.firstJobs(round, shardsPerJob(states.length, workers));
        gather.expectRound(jobs);
        await untilAborted(publisher.publish(round, theta, jobs, this.rounds.previous), signal);
      }
      this.rounds.previous = first;
      t1 = performance.now();
      await untilAborted(gather.collect(), signal);
    } catch (e) {
      await settlesWithin(gather.withdrawAll(), WITHDRAW_MS).catch(() => false);
      throw signal?.aborted ? new InterruptedError(signal.reason as StopSignal, first) : e;
    }
    const t2 = performance.now();
    await gather.finish();
    this.gradientBytes += gather.gradientBytes;
    this.steps += steps.length; // a round's bytes count per global step, as bytes_per_step does (round-bytes.ts)
    const results = gather.replicaResults();
    this.timer.addStep(gather.shardResults, {
      publish: t1 - t0,
      gather: t2 - t1,
      aggregate: gather.aggregateMs + (performance.now() - t2),
    });
    for (const o of this.observers) o.stepGathered(first, this.timer.last, gather.shardResults);
    this.lastStepMs = (performance.now() - t0) / steps.length; // a step's share, for the length of the next lease set
    return results;
  }

  /** Mean payload bytes a global step received (the results kept; a round's over its steps), or 0 before any step. */
  get gradientBytesPerStep(): number {
    return this.steps === 0 ? 0 : this.gradientBytes / this.steps;
  }

  /** The shards' residuals, read from Redis once (a checkpoint is not worth waiting for a Redis that is down). */
  async residualState(): Promise<ShardResiduals> {
    if (!this.residuals) return [];
    const residuals = this.residuals;
    const state = await this.retry.once('reading the shards’ residuals', () => residuals.read(this.tensors, this.shards));
    if (state === undefined) throw new Error('the shards’ residuals could not be read from Redis (connection lost)');
    return state;
  }

  async restoreResiduals(state: ShardResiduals, nextStep: number): Promise<void> {
    if (!this.residuals) throw new Error('this run keeps no residuals (--compress int8 only)');
    const residuals = this.residuals;
    this.shards = Math.max(this.shards, state.length);
    await this.retry.untilDone('writing the shards’ residuals', () => residuals.restore(this.tensors, state, nextStep));
  }

  /** Each shard with a kept result now reads the residual its attempt wrote; the ones before are dropped. */
  private async moveResiduals(step: number, results: ReadonlyArray<ShardResult | undefined>): Promise<void> {
    const residuals = this.residuals;
    if (!residuals) return;
    const stale: string[] = [];
    for (const [k, r] of results.entries()) {
      if (r === undefined) continue;
      const old = residuals.accept(step, k, r.attempt);
      if (old !== undefined) stale.push(old);
    }
    await Promise.all(stale.map((key) => this.tensors.unlink(key).catch(() => undefined)));
  }

  /** Removes every key of the run (θ, the results list); the queue's jobs were removed as they completed. */
  async close(): Promise<void> {
    // The holders of the last lease set end with the last step (clock-entry.ts); leases no worker has taken would
    // wait in the queue for one.
    if (this.leases) {
      const { book } = this.leases;
      const set = book.end();
      const ending = set !== undefined && this.lastStep >= 0 ? this.publisher.endLeaseSet(this.lastStep, set) : undefined;
      await settlesWithin(Promise.all([ending, this.publisher.withdraw(book.ids)]), WITHDRAW_MS).catch(() => false);
    }
    await deleteKeysWithPrefix(this.redis, this.keys.prefix);
  }
}
