import {
  InvalidMessageError,
  readGradientInto,
  type MessageSigner,
  readResultMessage,
  SkippedBulk,
  validateShardFailure,
  validateShardResult,
  type ShardJob,
  type ShardResult,
} from '@gradq/cluster';
import type { Queue } from 'bullmq';
import { addInto } from '@gradq/nn';
import type { StepPlan, StepStats } from '@gradq/train';
import { MAX_HEADER_BYTES, type ResultInbox } from './result-inbox.js';
import type { ShardJobSpec, StepPublisher } from './step-publisher.js';

/** Counters of what the gather loop met; reported in --json. */
export interface ClusterCounters {
  duplicates: number; // results for a shard that already had one
  rejected: number; // results or gradients that failed validation
  recomputed: number; // shard jobs added again (after rejection, failure or loss)
  failed: number; // shards a worker reported it could not compute
}

/** What the gathers of a run share, from step to step. */
export interface GatherContext {
  runId: string;
  /** Asked whether a job is still there, and how many workers are connected. */
  queue: Queue<ShardJob, ShardResult>;
  /** Adds a shard's job again. */
  publisher: StepPublisher;
  inbox: ResultInbox;
  /** Where shard k's gradient is read into (at least one per shard of the step); reused. */
  grads: Float32Array[];
  counters: ClusterCounters;
  log: (line: string) => void;
  /** With the run's secret: only result messages it signed are read (others are rejected unread). */
  signer?: MessageSigner;
}

/** The attempt of a shard the gather waits for, and the BullMQ id of its job. */
interface Pending {
  attempt: number;
  jobId: string;
}

const MAX_ATTEMPTS = 8;
/** How often the gather loop checks on the jobs it waits for (see watchdog). */
const WATCHDOG_MS = 3000;

/**
 * One step's gather. It pops result messages off the run's results list as workers push them (keeping the first
 * valid result per shard, dropping duplicates, rejecting and recomputing bad ones), adding shard k's gradient into
 * the sum as soon as shards 0..k are all in. A shard whose job vanished or failed is added again; nothing a worker
 * sends reaches the model without passing validation.
 *
 * A BLPOP that the server leaves unanswered fails after POLL_S + 2 s, and a lost connection is retried, so that
 * neither can stall the loop: the watchdog runs every WATCHDOG_MS whatever arrives.
 */
export class StepGather {
  /** Milliseconds spent reading, validating and adding gradients. */
  aggregateMs = 0;
  private readonly pending = new Map<number, Pending>(); // by shard
  private readonly results: Array<ShardResult | undefined>;
  private added = 0; // shards 0..added-1 are in the sum, or empty
  private readonly superseded = new Set<string>(); // job ids of attempts that were added again
  /** Watchdog ticks in a row at which a job was missing from the queue, by job id. */
  private readonly missing = new Map<string, number>();

  /** Gathers the results of `jobs` (the step's first attempts, to be published) into `sum`. */
  constructor(
    private readonly plan: StepPlan,
    jobs: readonly ShardJobSpec[],
    private readonly sum: Float32Array,
    private readonly ctx: GatherContext,
  ) {
    this.results = new Array(plan.shards.length);
    for (const j of jobs) this.pending.set(j.data.shard, { attempt: j.data.attempt, jobId: j.opts.jobId });
  }

  /** The results kept, by shard (undefined for an empty shard). */
  get shardResults(): ReadonlyArray<ShardResult | undefined> {
    return this.results;
  }

  /** Pops and handles messages until every shard is in the sum, running the watchdog every WATCHDOG_MS. */
  async collect(): Promise<void> {
    let lastProgress = performance.now();
    let lastWatchdog = lastProgress;
    while (this.pending.size > 0) {
      const popped = await this.ctx.inbox.pop(this.plan.globalStep);
      if (popped !== null) {
        const a0 = performance.now();
        const before = this.pending.size;
        await this.handle(popped);
        if (this.pending.size < before) {
          lastProgress = performance.now();
          this.addReady();
        }
        this.aggregateMs += performance.now() - a0;
      }
      if (this.pending.size > 0 && performance.now() - lastWatchdog >= WATCHDOG_MS) {
        lastWatchdog = performance.now();
        await this.watchdog(lastWatchdog - lastProgress);
      }
    }
    this.addReady();
  }

  /** Once collected: removes the jobs of attempts that were not needed. */
  async finish(): Promise<void> {
    await this.ctx.publisher.withdraw(this.superseded);
  }

  /** The summed loss and correct count of the results kept. */
  stats(): StepStats {
    let lossSum = 0;
    let correct = 0;
    for (const r of this.results) {
      if (r === undefined) continue;
      lossSum += r.lossSum;
      correct += r.correct;
    }
    return { lossSum, correct };
  }

  /** Adds the gradients of the shards that are in, in shard order, up to the first shard still waited for. */
  private addReady(): void {
    for (; this.added < this.plan.shards.length; this.added++) {
      const k = this.added;
      if (this.results[k] !== undefined) addInto(this.sum, this.ctx.grads[k]);
      else if (this.pending.has(k)) return; // still waited for
      // else an empty shard of a last, partial batch: nothing to add
    }
  }

  /**
   * One message off the results list: a result, a failure report, or something to reject or ignore. A shard's
   * gradient is read into grads[k] only while the shard has no result: once it has one, grads[k] stays as it is
   * until it is added.
   */
  private async handle(bytes: Uint8Array | SkippedBulk): Promise<void> {
    const t = this.plan.globalStep;
    const what = `step ${t}`;
    let message;
    try {
      if (bytes instanceof SkippedBulk) {
        throw new InvalidMessageError(`result message of ${bytes.length} bytes (at most ${this.ctx.inbox.maxMessageBytes} for this model)`);
      }
      message = readResultMessage(bytes, MAX_HEADER_BYTES, this.ctx.signer);
    } catch (e) {
      if (!(e instanceof InvalidMessageError)) throw e;
      return this.reject(what, e.message); // cannot tell which shard it was for: the watchdog covers it
    }
    // Which shard does it claim to answer? Anything not for this run and step is ignored (e.g. a late duplicate).
    const claim = message.header;
    if (claim.run !== this.ctx.runId || claim.step !== t) return;
    const k = claim.shard;
    if (typeof k !== 'number' || !Number.isInteger(k) || k < 0 || k >= this.plan.shards.length) {
      return this.reject(what, `shard ${String(k)} does not exist`);
    }
    const waiting = this.pending.get(k);
    // A failure report: recompute, if it is about the attempt being waited for.
    if ('error' in claim) {
      try {
        const failure = validateShardFailure(claim);
        if (message.gradient.byteLength > 0)
          throw new InvalidMessageError(`failure report with ${message.gradient.byteLength} bytes after it`);
        if (waiting === undefined || failure.attempt !== waiting.attempt) return; // late, or about an earlier attempt
        this.ctx.counters.failed++;
        this.ctx.log(`${what} shard ${k}: worker ${failure.worker} failed (${JSON.stringify(failure.error.slice(0, 300))}); recomputing`);
        await this.again(k);
      } catch (e) {
        if (!(e instanceof InvalidMessageError)) throw e;
        await this.reject(`${what} shard ${k}`, e.message);
      }
      return;
    }
    if (this.results[k] !== undefined) {
      this.ctx.counters.duplicates++;
      this.ctx.log(`${what} shard ${k}: duplicate result from ${JSON.stringify(String(claim.worker).slice(0, 100))} ignored`);
      return;
    }
    if (waiting === undefined) return;
    try {
      const [start, end] = this.plan.shards[k];
      const result = validateShardResult(claim, { run: this.ctx.runId, step: t, shard: k, count: end - start });
      readGradientInto(message.gradient, this.ctx.grads[k], `from ${JSON.stringify(result.worker.slice(0, 100))}`);
      this.results[k] = result;
      this.pending.delete(k);
    } catch (e) {
      if (!(e instanceof InvalidMessageError)) throw e;
      // A bad answer from an earlier attempt needs no new one: the attempt waited for is on its way.
      const earlier = typeof claim.attempt === 'number' && claim.attempt < waiting.attempt;
      await this.reject(`${what} shard ${k}`, e.message, earlier ? undefined : () => this.again(k));
    }
  }

  private async reject(what: string, why: string, recompute?: () => Promise<void>): Promise<void> {
    this.ctx.counters.rejected++;
    this.ctx.log(`${what}: result rejected (${why})${recompute ? '; recomputing' : ''}`);
    await recompute?.();
  }

  /** Adds the shard's job again as a new attempt. */
  private async again(shard: number): Promise<void> {
    const previous = this.pending.get(shard);
    const attempt = (previous?.attempt ?? 0) + 1;
    if (attempt >= MAX_ATTEMPTS) {
      throw new Error(`step ${this.plan.globalStep} shard ${shard}: no valid result after ${MAX_ATTEMPTS} attempts; see the worker logs`);
    }
    if (previous) this.superseded.add(previous.jobId);
    const job = this.ctx.publisher.job(this.plan, shard, attempt);
    this.pending.set(shard, { attempt, jobId: job.opts.jobId });
    this.ctx.counters.recomputed++;
    await this.ctx.publisher.add(job);
  }

  /**
   * Every WATCHDOG_MS while shards are missing: re-add the jobs that are gone from the queue and say what is being
   * waited for. A job is gone once it completed or failed (they are removed); a worker pushes its result just
   * after completing it, so a job counts as lost only when it is still gone, with no result, one tick later.
   */
  private async watchdog(waitedMs: number): Promise<void> {
    const t = this.plan.globalStep;
    for (const [shard, p] of [...this.pending.entries()]) {
      if (await this.ctx.queue.getJob(p.jobId)) {
        this.missing.delete(p.jobId);
        continue;
      }
      const ticks = (this.missing.get(p.jobId) ?? 0) + 1;
      this.missing.set(p.jobId, ticks);
      if (ticks < 2) continue;
      this.ctx.log(`step ${t} shard ${shard}: job ${p.jobId} is gone without a usable result; recomputing`);
      await this.again(shard);
    }
    if (waitedMs > 10_000) {
      const workers = await this.ctx.queue.getWorkersCount();
      this.ctx.log(
        `step ${t}: waiting ${(waitedMs / 1000).toFixed(0)} s for shards ${[...this.pending.keys()].join(', ')}; ${workers} workers connected`,
      );
    }
  }
}
