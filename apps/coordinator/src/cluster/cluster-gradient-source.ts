import {
  decodeGradientInto, deleteKeysWithPrefix, encodeParams, InvalidMessageError, KEY_TTL_MS, shardJobId, validateShardResult,
  type RunKeys, type ShardJob, type ShardResult,
} from '@gradq/cluster'; // prettier-ignore
import type { Queue, QueueEvents } from 'bullmq';
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
  failed: number; // jobs a worker reported as failed
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

/** A result or failure as it arrives from QueueEvents. */
type Arrival = { kind: 'completed'; jobId: string; value: unknown } | { kind: 'failed'; jobId: string; reason: string };

const MAX_ATTEMPTS = 8;
const WATCHDOG_MS = 3000;

/**
 * The gradient source of the cluster. Per step: write θ_t once, add the step's shard jobs in one call, gather the
 * results (keeping the first valid one per shard, dropping duplicates, rejecting and recomputing bad ones), then
 * add the shard gradients in shard order. A shard whose job vanished or failed is added again; nothing a
 * worker sends reaches the model without passing validation.
 */
export class ClusterGradientSource implements GradientSource {
  readonly counters: ClusterCounters = { duplicates: 0, rejected: 0, recomputed: 0, failed: 0 };
  readonly timings: ClusterTimings = {
    steps: 0, publish: 0, gather: 0, queueWait: 0, workerFetch: 0, workerCompute: 0, workerUpload: 0, aggregate: 0,
  }; // prettier-ignore
  private arrivals: Arrival[] = [];
  private wake: (() => void) | undefined;
  private readonly grads: Float32Array[] = [];
  private decodeMs = 0;

  constructor(
    private readonly redis: Redis,
    private readonly queue: Queue<ShardJob, ShardResult>,
    events: QueueEvents,
    private readonly keys: RunKeys,
    private readonly run: RunDescriptor,
    private readonly paramCount: number,
    private readonly log: (line: string) => void,
  ) {
    events.on('completed', ({ jobId, returnvalue }) => this.arrive({ kind: 'completed', jobId, value: returnvalue }));
    events.on('failed', ({ jobId, failedReason }) => this.arrive({ kind: 'failed', jobId, reason: failedReason }));
  }

  async step(plan: StepPlan, params: Float32Array, sum: Float32Array): Promise<StepStats> {
    const t = plan.globalStep;
    const K = plan.shards.length;
    const t0 = performance.now();
    while (this.grads.length < K) this.grads.push(new Float32Array(this.paramCount));
    // Publish θ_t once; θ_{t-1} is no longer needed.
    await this.redis.set(this.keys.params(t), Buffer.from(encodeParams(params)), 'PX', KEY_TTL_MS);
    if (t > 0) await this.redis.unlink(this.keys.params(t - 1));
    // Scatter: one job per non-empty shard, in one call.
    const pending = new Map<number, { attempt: number; jobId: string }>();
    const results: Array<ShardResult | undefined> = new Array(K);
    const jobs = plan.shards.flatMap(([start, end], k) => (end > start ? [this.job(plan, k, 0)] : []));
    for (const j of jobs) pending.set(j.data.shard, { attempt: 0, jobId: j.opts.jobId });
    await this.queue.addBulk(jobs);
    const t1 = performance.now();
    // Gather.
    let lastProgress = performance.now();
    while (pending.size > 0) {
      const arrival = await this.next(WATCHDOG_MS);
      if (arrival === undefined) {
        await this.watchdog(plan, pending, performance.now() - lastProgress);
        continue;
      }
      const before = pending.size;
      await this.handle(arrival, plan, pending, results);
      if (pending.size < before) lastProgress = performance.now();
    }
    const t2 = performance.now();
    // Average: add the shard sums in shard order.
    let lossSum = 0;
    let correct = 0;
    let slowest = 0;
    for (let k = 0; k < K; k++) {
      const r = results[k];
      if (r === undefined) continue; // an empty shard of a last, partial batch
      addInto(sum, this.grads[k]);
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
    tm.queueWait += Math.max(0, t2 - t1 - slowest);
    tm.aggregate += this.decodeMs + (performance.now() - t2);
    this.decodeMs = 0;
    await this.redis.unlink(...plan.shards.map((_, k) => this.keys.grad(t, k)));
    return { lossSum, correct };
  }

  /** Removes every key of the run; the queue's jobs were removed as they completed. */
  async close(): Promise<void> {
    await deleteKeysWithPrefix(this.redis, this.keys.prefix);
  }

  private job(plan: StepPlan, shard: number, attempt: number) {
    const [start, end] = plan.shards[shard];
    const data: ShardJob = {
      v: 1, run: this.keys.runId, step: plan.globalStep, shard, attempt, ...this.run, epoch: plan.epoch, start, end,
      paramsKey: this.keys.params(plan.globalStep), gradKey: this.keys.grad(plan.globalStep, shard),
    }; // prettier-ignore
    const jobId = shardJobId(this.keys.runId, plan.globalStep, shard, attempt);
    return { name: 'shard', data, opts: { jobId, removeOnComplete: true, removeOnFail: true } };
  }

  private async handle(
    arrival: Arrival,
    plan: StepPlan,
    pending: Map<number, { attempt: number; jobId: string }>,
    results: Array<ShardResult | undefined>,
  ): Promise<void> {
    // prettier-ignore
    if (arrival.kind === 'failed') {
      const entry = [...pending.entries()].find(([, p]) => p.jobId === arrival.jobId);
      if (!entry) return; // a job of another step or run
      this.counters.failed++;
      this.log(`step ${plan.globalStep} shard ${entry[0]}: worker failed (${arrival.reason})`);
      await this.again(plan, entry[0], pending);
      return;
    }
    // Which shard does it claim to answer? Anything not for this run and step is ignored.
    const claim = parseResult(arrival.value);
    if (claim === undefined || claim.run !== this.keys.runId || claim.step !== plan.globalStep) return;
    const k = claim.shard;
    if (typeof k !== 'number' || !Number.isInteger(k) || k < 0 || k >= plan.shards.length) {
      return this.reject(plan, undefined, `shard ${String(k)} does not exist`);
    }
    if (results[k] !== undefined) {
      this.counters.duplicates++;
      this.log(`step ${plan.globalStep} shard ${k}: duplicate result from ${String(claim.worker)} ignored`);
      return;
    }
    if (!pending.has(k)) return;
    const [start, end] = plan.shards[k];
    const expected = { run: this.keys.runId, step: plan.globalStep, shard: k, count: end - start };
    try {
      const result = validateShardResult(claim, expected);
      const key = this.keys.grad(plan.globalStep, k);
      const bytes = await this.redis.getBuffer(key);
      const d0 = performance.now();
      decodeGradientInto(bytes, expected, this.grads[k], key);
      this.decodeMs += performance.now() - d0;
      results[k] = result;
      pending.delete(k);
    } catch (e) {
      if (!(e instanceof InvalidMessageError)) throw e;
      await this.redis.unlink(this.keys.grad(plan.globalStep, k));
      await this.reject(plan, k, e.message, pending);
    }
  }

  private async reject(
    plan: StepPlan,
    shard: number | undefined,
    why: string,
    pending?: Map<number, { attempt: number; jobId: string }>,
  ): Promise<void> {
    this.counters.rejected++;
    this.log(`step ${plan.globalStep}${shard === undefined ? '' : ` shard ${shard}`}: result rejected (${why}); recomputing`);
    if (shard !== undefined && pending) await this.again(plan, shard, pending);
  }

  /** Adds the shard's job again as a new attempt. */
  private async again(plan: StepPlan, shard: number, pending: Map<number, { attempt: number; jobId: string }>): Promise<void> {
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
  private async watchdog(plan: StepPlan, pending: Map<number, { attempt: number; jobId: string }>, waitedMs: number): Promise<void> {
    for (const [shard, p] of [...pending.entries()]) {
      const job = await this.queue.getJob(p.jobId);
      if (!job) await this.again(plan, shard, pending); // completed but its result was missed, or removed
    }
    if (waitedMs > 10_000) {
      const workers = await this.queue.getWorkersCount();
      this.log(
        `step ${plan.globalStep}: waiting ${(waitedMs / 1000).toFixed(0)} s for shards ${[...pending.keys()].join(', ')}; ${workers} workers connected`,
      );
    }
  }

  private arrive(a: Arrival): void {
    this.arrivals.push(a);
    this.wake?.();
  }

  private next(timeoutMs: number): Promise<Arrival | undefined> {
    const first = this.arrivals.shift();
    if (first) return Promise.resolve(first);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.wake = undefined;
        resolve(undefined);
      }, timeoutMs);
      this.wake = () => {
        clearTimeout(timer);
        this.wake = undefined;
        resolve(this.arrivals.shift());
      };
    });
  }
}

/** BullMQ hands return values to QueueEvents as JSON text. */
function parseResult(value: unknown): Record<string, unknown> | undefined {
  let v = value;
  if (typeof v === 'string') {
    try {
      v = JSON.parse(v);
    } catch {
      return undefined;
    }
  }
  return typeof v === 'object' && v !== null ? (v as Record<string, unknown>) : undefined;
}
