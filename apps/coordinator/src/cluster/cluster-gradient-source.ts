import {
  deleteKeysWithPrefix, encodeParams, InvalidMessageError, KEY_TTL_MS, readGradientInto, readResultMessage, RedisConnectionError, shardJobId, SkippedBulk,
  validateShardFailure, validateShardResult, type RunKeys, type ShardJob, type ShardResult, type TensorConnection,
} from '@gradq/cluster'; // prettier-ignore
import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { addInto } from '@gradq/nn';
import type { GradientSource, StepPlan, StepStats } from '@gradq/train';

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

/**
 * Milliseconds summed over the steps: where a cluster step's time goes. The first step is left out: it also
 * waits for the workers to start and load the data.
 */
export interface ClusterTimings {
  steps: number;
  publish: number; // writing θ_t and adding the jobs
  gather: number; // from the jobs added to the last result in (wall)
  queueWait: number; // gather minus the busiest worker's fetch + compute + upload for the step, minus aggregate
  workerFetch: number; // per step, summed over shards
  workerCompute: number;
  workerUpload: number;
  aggregate: number; // reading, validating and adding the gradients
}

/** The attempt of a shard the source waits for, and the BullMQ id of its job. */
type Pending = Map<number, { attempt: number; jobId: string }>;

const MAX_ATTEMPTS = 8;
/** BLPOP's timeout: the gather loop wakes at least this often, result or not. */
export const POLL_S = 1;
/** How often the gather loop checks on the jobs it waits for (see watchdog). */
const WATCHDOG_MS = 3000;
/** A result message is at most this much larger than the gradient: the header and its padding. */
const MAX_HEADER_BYTES = 64 * 1024;

/**
 * The gradient source of the cluster. Per step: write θ_t and add the step's shard jobs in one round trip,
 * then pop result messages off the run's results list as workers push them (keeping the first valid result per
 * shard, dropping duplicates, rejecting and recomputing bad ones), adding shard k's gradient into the sum as
 * soon as shards 0..k are all in. A shard whose job vanished or failed is added again; nothing a worker sends
 * reaches the model without passing validation.
 *
 * θ and the results travel on `tensors` (a lean connection: see TensorConnection), the jobs on BullMQ's. A BLPOP
 * that the server leaves unanswered fails after POLL_S + 2 s, and a lost connection is retried, so that neither
 * can stall the loop: the watchdog runs every WATCHDOG_MS whatever arrives.
 */
export class ClusterGradientSource implements GradientSource {
  readonly counters: ClusterCounters = { duplicates: 0, rejected: 0, recomputed: 0, failed: 0 };
  readonly timings: ClusterTimings = {
    steps: 0, publish: 0, gather: 0, queueWait: 0, workerFetch: 0, workerCompute: 0, workerUpload: 0, aggregate: 0,
  }; // prettier-ignore
  private readonly grads: Float32Array[] = [];
  /** Watchdog ticks in a row at which a job was missing from the queue, by job id (cleared every step). */
  private readonly missing = new Map<string, number>();
  private stepsSeen = 0;
  private readonly busy = new Map<string, number>(); // per worker: its fetch + compute + upload in this step
  private inbox = new Uint8Array(0); // where a popped result message lands; reused
  private tensorsDown = false; // the tensor connection's last command failed (logged once per outage)

  /** `tensors` is a connection of its own: it writes θ, then waits in BLPOP for the results. */
  constructor(
    private readonly redis: Redis,
    private readonly tensors: TensorConnection,
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
    // Publish θ_t (a view of params: they do not change before the write is awaited) and drop θ_{t-1}, then add
    // one job per non-empty shard: Redis has θ_t before any worker can see a job.
    const pending: Pending = new Map();
    const results: Array<ShardResult | undefined> = new Array(K);
    const jobs = plan.shards.flatMap(([start, end], k) => (end > start ? [this.job(plan, k, 0)] : []));
    for (const j of jobs) pending.set(j.data.shard, { attempt: 0, jobId: j.opts.jobId });
    for (let delay = 250; ; delay = Math.min(2 * delay, 5000)) {
      const written = await this.tensorsUp(`step ${t}: writing θ`, () =>
        Promise.all([
          this.tensors.set(this.keys.params(t), encodeParams(params), KEY_TTL_MS),
          t > 0 ? this.tensors.unlink(this.keys.params(t - 1)) : undefined,
        ]),
      );
      if (written) break;
      await new Promise((r) => setTimeout(r, delay)); // both commands may be sent again
    }
    await this.queue.addBulk(jobs);
    const t1 = performance.now();
    // Gather, adding each shard's gradient as soon as it and every shard before it are in (shard order).
    let added = 0;
    let aggregateMs = 0;
    let lastProgress = performance.now();
    let lastWatchdog = lastProgress;
    const addReady = (): void => {
      for (; added < K && (results[added] !== undefined || !pending.has(added)); added++) {
        if (results[added] !== undefined) addInto(sum, this.grads[added]); // else an empty shard of a last, partial batch
      }
    };
    const superseded = new Set<string>(); // job ids of attempts that were added again
    while (pending.size > 0) {
      const popped = await this.pop(t);
      if (popped !== null) {
        const a0 = performance.now();
        const before = pending.size;
        await this.handle(popped, plan, pending, results, superseded);
        if (pending.size < before) {
          lastProgress = performance.now();
          addReady();
        }
        aggregateMs += performance.now() - a0;
      }
      if (pending.size > 0 && performance.now() - lastWatchdog >= WATCHDOG_MS) {
        lastWatchdog = performance.now();
        await this.watchdog(plan, pending, superseded, lastWatchdog - lastProgress);
      }
    }
    const t2 = performance.now();
    addReady();
    this.missing.clear();
    // Jobs of attempts that were not needed: remove those still waiting (an active one finishes and is ignored).
    for (const jobId of superseded) await this.queue.remove(jobId).catch(() => 0);
    let lossSum = 0;
    let correct = 0;
    for (const r of results) {
      if (r === undefined) continue;
      lossSum += r.lossSum;
      correct += r.correct;
    }
    if (this.stepsSeen++ > 0) this.time(results, t1 - t0, t2 - t1, aggregateMs + (performance.now() - t2));
    return { lossSum, correct };
  }

  private time(results: Array<ShardResult | undefined>, publish: number, gather: number, aggregate: number): void {
    const tm = this.timings;
    this.busy.clear();
    for (const r of results) {
      if (r === undefined) continue;
      tm.workerFetch += r.fetchMs;
      tm.workerCompute += r.computeMs;
      tm.workerUpload += r.uploadMs;
      this.busy.set(r.worker, (this.busy.get(r.worker) ?? 0) + r.fetchMs + r.computeMs + r.uploadMs);
    }
    tm.steps++;
    tm.publish += publish;
    tm.gather += gather;
    tm.queueWait += Math.max(0, gather - Math.max(0, ...this.busy.values()) - aggregate);
    tm.aggregate += aggregate;
  }

  /**
   * The next message off the results list (a view of `inbox`, valid until the next pop), or null after POLL_S
   * seconds, or after a failed BLPOP: that is logged once per outage and retried after a pause. A message larger
   * than any result for this model is not read into memory.
   */
  private async pop(t: number): Promise<Uint8Array | SkippedBulk | null> {
    const limit = this.maxMessageBytes();
    const popped = await this.tensorsUp(`step ${t}: waiting for results`, () =>
      this.tensors.blpop(this.keys.results, POLL_S, (length) => {
        if (length > limit) return 'skip';
        if (this.inbox.byteLength < length) this.inbox = new Uint8Array(Math.min(limit, length + (length >>> 3)));
        return this.inbox;
      }),
    );
    if (popped !== undefined) return popped;
    await new Promise((r) => setTimeout(r, 500));
    return null;
  }

  /** The longest result message for this model: the fixed part, the longest header read, the gradient. */
  private maxMessageBytes(): number {
    return 8 + MAX_HEADER_BYTES + 4 * this.paramCount;
  }

  /**
   * Runs a command on the tensor connection; undefined when the connection failed (logged once per outage, with
   * a line when it works again). An error reply from Redis is thrown: sending the command again would not help.
   */
  private async tensorsUp<T>(what: string, command: () => Promise<T>): Promise<T | undefined> {
    try {
      const result = await command();
      if (this.tensorsDown) this.log(`${what}: Redis reachable again`);
      this.tensorsDown = false;
      return result;
    } catch (e) {
      if (!(e instanceof RedisConnectionError)) throw e;
      if (!this.tensorsDown) this.log(`${what} failed (${e.message}); retrying`);
      this.tensorsDown = true;
      return undefined;
    }
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
  private async handle(
    bytes: Uint8Array | SkippedBulk,
    plan: StepPlan,
    pending: Pending,
    results: Array<ShardResult | undefined>,
    superseded: Set<string>,
  ): Promise<void> {
    const t = plan.globalStep;
    const what = `step ${t}`;
    let message;
    try {
      if (bytes instanceof SkippedBulk) {
        throw new InvalidMessageError(`result message of ${bytes.length} bytes (at most ${this.maxMessageBytes()} for this model)`);
      }
      message = readResultMessage(bytes, MAX_HEADER_BYTES);
    } catch (e) {
      if (!(e instanceof InvalidMessageError)) throw e;
      return this.reject(what, e.message); // cannot tell which shard it was for: the watchdog covers it
    }
    // Which shard does it claim to answer? Anything not for this run and step is ignored (e.g. a late duplicate).
    const claim = message.header;
    if (claim.run !== this.keys.runId || claim.step !== t) return;
    const k = claim.shard;
    if (typeof k !== 'number' || !Number.isInteger(k) || k < 0 || k >= plan.shards.length) {
      return this.reject(what, `shard ${String(k)} does not exist`);
    }
    const waiting = pending.get(k);
    // A failure report: recompute, if it is about the attempt being waited for.
    if ('error' in claim) {
      try {
        const failure = validateShardFailure(claim);
        if (message.gradient.byteLength > 0)
          throw new InvalidMessageError(`failure report with ${message.gradient.byteLength} bytes after it`);
        if (waiting === undefined || failure.attempt !== waiting.attempt) return; // late, or about an earlier attempt
        this.counters.failed++;
        this.log(`${what} shard ${k}: worker ${failure.worker} failed (${JSON.stringify(failure.error.slice(0, 300))}); recomputing`);
        await this.again(plan, k, pending, superseded);
      } catch (e) {
        if (!(e instanceof InvalidMessageError)) throw e;
        await this.reject(`${what} shard ${k}`, e.message);
      }
      return;
    }
    if (results[k] !== undefined) {
      this.counters.duplicates++;
      this.log(`${what} shard ${k}: duplicate result from ${JSON.stringify(String(claim.worker).slice(0, 100))} ignored`);
      return;
    }
    if (waiting === undefined) return;
    try {
      const [start, end] = plan.shards[k];
      const result = validateShardResult(claim, { run: this.keys.runId, step: t, shard: k, count: end - start });
      readGradientInto(message.gradient, this.grads[k], `from ${JSON.stringify(result.worker.slice(0, 100))}`);
      results[k] = result;
      pending.delete(k);
    } catch (e) {
      if (!(e instanceof InvalidMessageError)) throw e;
      // A bad answer from an earlier attempt needs no new one: the attempt waited for is on its way.
      const earlier = typeof claim.attempt === 'number' && claim.attempt < waiting.attempt;
      await this.reject(`${what} shard ${k}`, e.message, earlier ? undefined : () => this.again(plan, k, pending, superseded));
    }
  }

  private async reject(what: string, why: string, recompute?: () => Promise<void>): Promise<void> {
    this.counters.rejected++;
    this.log(`${what}: result rejected (${why})${recompute ? '; recomputing' : ''}`);
    await recompute?.();
  }

  /** Adds the shard's job again as a new attempt. */
  private async again(plan: StepPlan, shard: number, pending: Pending, superseded: Set<string>): Promise<void> {
    const previous = pending.get(shard);
    const attempt = (previous?.attempt ?? 0) + 1;
    if (attempt >= MAX_ATTEMPTS) {
      throw new Error(`step ${plan.globalStep} shard ${shard}: no valid result after ${MAX_ATTEMPTS} attempts; see the worker logs`);
    }
    if (previous) superseded.add(previous.jobId);
    const job = this.job(plan, shard, attempt);
    pending.set(shard, { attempt, jobId: job.opts.jobId });
    this.counters.recomputed++;
    await this.queue.add(job.name, job.data, job.opts);
  }

  /**
   * Every WATCHDOG_MS while shards are missing: re-add the jobs that are gone from the queue and say what is being
   * waited for. A job is gone once it completed or failed (they are removed); a worker pushes its result just
   * after completing it, so a job counts as lost only when it is still gone, with no result, one tick later.
   */
  private async watchdog(plan: StepPlan, pending: Pending, superseded: Set<string>, waitedMs: number): Promise<void> {
    for (const [shard, p] of [...pending.entries()]) {
      if (await this.queue.getJob(p.jobId)) {
        this.missing.delete(p.jobId);
        continue;
      }
      const ticks = (this.missing.get(p.jobId) ?? 0) + 1;
      this.missing.set(p.jobId, ticks);
      if (ticks < 2) continue;
      this.log(`step ${plan.globalStep} shard ${shard}: job ${p.jobId} is gone without a usable result; recomputing`);
      await this.again(plan, shard, pending, superseded);
    }
    if (waitedMs > 10_000) {
      const workers = await this.queue.getWorkersCount();
      this.log(
        `step ${plan.globalStep}: waiting ${(waitedMs / 1000).toFixed(0)} s for shards ${[...pending.keys()].join(', ')}; ${workers} workers connected`,
      );
    }
  }
}
