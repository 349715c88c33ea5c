import {
  deleteKeysWithPrefix, encodeParams, InvalidMessageError, KEY_TTL_MS, readGradientInto, readResultMessage, shardJobId,
  validateShardFailure, validateShardResult, type RunKeys, type ShardJob, type ShardResult,
} from '@gradq/cluster'; // prettier-ignore
import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { addInto, type GradientSource, type StepPlan, type StepStats } from '../train/gradient-source.js';

/** What every shard job of the run shares. */
export interface RunDescriptor {
  dataset: string;
  trainSamples: number;
  seed: number;
  model: string;
}

/** Counters of what the gather loop met; reported in --json. */
export interface ClusterCounters {
  duplicates: number; // results for a shard that already had one
  rejected: number; // results or gradients that failed validation
  recomputed: number; // shard jobs added again (after rejection, failure or loss)
  failed: number; // shards a worker reported it could not compute
}

/** Milliseconds summed over the steps: where a cluster step's time goes. */
export interface ClusterTimings {
  steps: number;
  publish: number; // writing θ_t and adding the jobs
  gather: number; // from the jobs added to the last result in (wall)
  queueWait: number; // gather minus the slowest shard's own fetch + compute + upload
  workerFetch: number; // per step, summed over shards
  workerCompute: number;
  workerUpload: number;
  aggregate: number; // reading, validating and adding the gradients
}

/** The attempt of a shard the source waits for, and the BullMQ id of its job. */
type Pending = Map<number, { attempt: number; jobId: string }>;

const MAX_ATTEMPTS = 8;
const WATCHDOG_S = 3;

/**
 * The gradient source of the cluster. Per step: write θ_t and add the step's shard jobs in one round trip,
 * then pop result messages off the run's results list as workers push them (keeping the first valid result per
 * shard, dropping duplicates, rejecting and recomputing bad ones), adding shard k's gradient into the sum as
 * soon as shards 0..k are all in. A shard whose job vanished or failed is added again; nothing a worker sends
 * reaches the model without passing validation.
 */
export class ClusterGradientSource implements GradientSource {
  readonly counters: ClusterCounters = { duplicates: 0, rejected: 0, recomputed: 0, failed: 0 };
  readonly timings: ClusterTimings = {
    steps: 0, publish: 0, gather: 0, queueWait: 0, workerFetch: 0, workerCompute: 0, workerUpload: 0, aggregate: 0,
  }; // prettier-ignore
  private readonly grads: Float32Array[] = [];

  /** `blocking` is a connection of its own: it waits in BLPOP for the results. */
  constructor(
    private readonly redis: Redis,
    private readonly blocking: Redis,
    private readonly queue: Queue<ShardJob, ShardResult>,
    private readonly keys: RunKeys,
    private readonly run: RunDescriptor,
    private readonly paramCount: number,
    private readonly log: (line: string) => void,
  ) {}

  async step(plan: StepPlan, params: Float32Array, sum: Float32Array): Promise<StepStats> {
    const t = plan.globalStep;
    const K = plan.shards.length;
    const t0 = performance.now();
    while (this.grads.length < K) this.grads.push(new Float32Array(this.paramCount));
    // Publish θ_t (a view of params: they do not change before the write is awaited), drop θ_{t-1}, add one
    // job per non-empty shard. One connection, so Redis has θ_t before any worker can see a job.
    const pending: Pending = new Map();
    const results: Array<ShardResult | undefined> = new Array(K);
    const jobs = plan.shards.flatMap(([start, end], k) => (end > start ? [this.job(plan, k, 0)] : []));
    for (const j of jobs) pending.set(j.data.shard, { attempt: 0, jobId: j.opts.jobId });
    await Promise.all([
      this.redis.set(this.keys.params(t), encodeParams(params), 'PX', KEY_TTL_MS),
      t > 0 ? this.redis.unlink(this.keys.params(t - 1)) : undefined,
      this.queue.addBulk(jobs),
    ]);
    const t1 = performance.now();
    // Gather, adding each shard's gradient as soon as it and every shard before it are in (shard order).
    let added = 0;
    let aggregateMs = 0;
    let lastProgress = performance.now();
    const addReady = (): void => {
      for (; added < K && (results[added] !== undefined || !pending.has(added)); added++) {
        if (results[added] !== undefined) addInto(sum, this.grads[added]); // else an empty shard of a last, partial batch
      }
    };
    while (pending.size > 0) {
      const popped = await this.blocking.blpopBuffer(this.keys.results, WATCHDOG_S);
      if (popped === null) {
        await this.watchdog(plan, pending, performance.now() - lastProgress);
        continue;
      }
      const a0 = performance.now();
      const before = pending.size;
      await this.handle(popped[1], plan, pending, results);
      if (pending.size < before) {
        lastProgress = performance.now();
        addReady();
      }
      aggregateMs += performance.now() - a0;
    }
    const t2 = performance.now();
    addReady();
    let lossSum = 0;
    let correct = 0;
    let slowest = 0;
    for (const r of results) {
      if (r === undefined) continue;
      lossSum += r.lossSum;
      correct += r.correct;
      slowest = Math.max(slowest, r.fetchMs + r.computeMs + r.uploadMs);
      this.timings.workerFetch += r.fetchMs;
      this.timings.workerCompute += r.computeMs;
      this.timings.workerUpload += r.uploadMs;
    }
    const tm = this.timings;
    tm.steps++;
    tm.publish += t1 - t0;
    tm.gather += t2 - t1;
    tm.queueWait += Math.max(0, t2 - t1 - slowest - aggregateMs);
    tm.aggregate += aggregateMs + (performance.now() - t2);
    return { lossSum, correct };
  }

  /** Removes every key of the run (θ, the results list); the queue's jobs were removed as they completed. */
  async close(): Promise<void> {
    await deleteKeysWithPrefix(this.redis, this.keys.prefix);
  }

  private job(plan: StepPlan, shard: number, attempt: number) {
    const [start, end] = plan.shards[shard];
    const data: ShardJob = {
      v: 2, run: this.keys.runId, step: plan.globalStep, shard, attempt, ...this.run, epoch: plan.epoch, start, end,
      paramsKey: this.keys.params(plan.globalStep), resultsKey: this.keys.results,
    }; // prettier-ignore
    const jobId = shardJobId(this.keys.runId, plan.globalStep, shard, attempt);
    return { name: 'shard', data, opts: { jobId, removeOnComplete: true, removeOnFail: true } };
  }

  /** One message off the results list: a result, a failure report, or something to reject or ignore. */
  private async handle(bytes: Buffer, plan: StepPlan, pending: Pending, results: Array<ShardResult | undefined>): Promise<void> {
    const t = plan.globalStep;
    let message;
    try {
      message = readResultMessage(bytes);
    } catch (e) {
      if (!(e instanceof InvalidMessageError)) throw e;
      return this.reject(plan, undefined, e.message); // cannot tell which shard it was for: the watchdog covers it
    }
    // Which shard does it claim to answer? Anything not for this run and step is ignored (e.g. a late duplicate).
    const claim = message.header;
    if (claim.run !== this.keys.runId || claim.step !== t) return;
    const k = claim.shard;
    if (typeof k !== 'number' || !Number.isInteger(k) || k < 0 || k >= plan.shards.length) {
      return this.reject(plan, undefined, `shard ${String(k)} does not exist`);
    }
    if (results[k] !== undefined) {
      this.counters.duplicates++;
      this.log(`step ${t} shard ${k}: duplicate result from ${String(claim.worker)} ignored`);
      return;
    }
    const waiting = pending.get(k);
    if (waiting === undefined) return;
    try {
      if ('error' in claim) {
        const failure = validateShardFailure(claim);
        if (failure.attempt !== waiting.attempt) return; // an earlier attempt's; the current one is on its way
        this.counters.failed++;
        this.log(`step ${t} shard ${k}: worker ${failure.worker} failed (${failure.error}); recomputing`);
        return await this.again(plan, k, pending);
      }
      const [start, end] = plan.shards[k];
      const result = validateShardResult(claim, { run: this.keys.runId, step: t, shard: k, count: end - start });
      readGradientInto(message.gradient, this.grads[k], `step ${t} shard ${k}`);
      results[k] = result;
      pending.delete(k);
    } catch (e) {
      if (!(e instanceof InvalidMessageError)) throw e;
      await this.reject(plan, k, e.message, pending);
    }
  }

  private async reject(plan: StepPlan, shard: number | undefined, why: string, pending?: Pending): Promise<void> {
    this.counters.rejected++;
    this.log(`step ${plan.globalStep}${shard === undefined ? '' : ` shard ${shard}`}: result rejected (${why}); recomputing`);
    if (shard !== undefined && pending) await this.again(plan, shard, pending);
  }

  /** Adds the shard's job again as a new attempt. */
  private async again(plan: StepPlan, shard: number, pending: Pending): Promise<void> {
    const attempt = (pending.get(shard)?.attempt ?? 0) + 1;
    if (attempt >= MAX_ATTEMPTS) {
      throw new Error(`step ${plan.globalStep} shard ${shard}: no valid result after ${MAX_ATTEMPTS} attempts; see the worker logs`);
    }
    const job = this.job(plan, shard, attempt);
    pending.set(shard, { attempt, jobId: job.opts.jobId });
    this.counters.recomputed++;
    await this.queue.add(job.name, job.data, job.opts);
  }

  /** No result for a while: re-add jobs that vanished from the queue and say what is being waited for. */
  private async watchdog(plan: StepPlan, pending: Pending, waitedMs: number): Promise<void> {
    for (const [shard, p] of [...pending.entries()]) {
      const job = await this.queue.getJob(p.jobId);
      if (job) continue;
      this.log(`step ${plan.globalStep} shard ${shard}: job ${p.jobId} is gone without a usable result; recomputing`);
      await this.again(plan, shard, pending);
    }
    if (waitedMs > 10_000) {
      const workers = await this.queue.getWorkersCount();
      this.log(
        `step ${plan.globalStep}: waiting ${(waitedMs / 1000).toFixed(0)} s for shards ${[...pending.keys()].join(', ')}; ${workers} workers connected`,
      );
    }
  }
}
