import {
  InvalidMessageError,
  jobShards,
  readCompressedGradientInto,
  type MessageSigner,
  readResultMessage,
  SHM_UNREACHABLE,
  SkippedBulk,
  validateLeaseRelease,
  validateShardFailure,
  validateShardResult,
  type ShardJob,
  type ShardResult,
} from '@gradq/cluster';
import type { Queue } from 'bullmq';
import { addInto, paramsDigest, type GradientCodec } from '@gradq/nn';
import type { StepPlan, StepStats } from '@gradq/train';
import { GaveUpError } from './gave-up-error.js';
import { MAX_HEADER_BYTES, type ResultInbox } from './result-inbox.js';
import type { LeaseBook, LeaseSet } from './lease-book.js';
import type { ShardJobSpec, StepPublisher } from './step-publisher.js';
import { UNRESPONSIVE_MS, type WorkerRoster } from './worker-roster.js';

/** Counters of what the gather loop met; reported in --json. */
export interface ClusterCounters {
  duplicates: number; // results for a shard that already had one
  rejected: number; // results or gradients that failed validation
  recomputed: number; // shard jobs added again (after rejection, failure or loss)
  failed: number; // shards a worker reported it could not compute
  late: number; // messages about an earlier step of the run (a worker cut off, then back; a stalled job done twice)
}

/** What the gathers of a run share, from step to step. */
export interface GatherContext {
  runId: string;
  /** Asked whether a job is still there, and how many workers are connected. */
  queue: Queue<ShardJob, ShardResult[]>;
  /** Adds a shard's job again. */
  publisher: StepPublisher;
  inbox: ResultInbox;
  /** Where shard k's gradient is read into (at least one per shard of the step); reused. */
  grads: Float32Array[];
  counters: ClusterCounters;
  /** Who answered when, who is failing, who is connected. */
  roster: WorkerRoster;
  /** A step gives up after this long without a valid result, if no worker is responsive then (see watchdog). */
  giveUpMs: number;
  /** Aborted when the run is interrupted: the gather stops at its next turn. */
  signal?: AbortSignal;
  log: (line: string) => void;
  /** With the run's secret: only result messages it signed are read (others are rejected unread). */
  signer?: MessageSigner;
  /** How results' gradients must be encoded (--compress): a result tagged otherwise is rejected. */
  codec: GradientCodec;
  /** Step leases (lease-book.ts), when the run's steps are leased: told when a lease ends early. */
  leases?: LeaseBook;
  /** θ in shared memory (SharedMemoryTensors): told when a worker cannot open it, to send θ through Redis. */
  sharedMemory?: { fallBack(): boolean };
}

/** The attempt of a shard the gather waits for, and the BullMQ id of its job. */
interface Pending {
  attempt: number;
  jobId: string;
}

/** How often the gather loop checks on the jobs it waits for (see watchdog). */
const WATCHDOG_MS = 3000;
/** After this long without a shard coming in, each watchdog tick logs what the step waits for. */
const REPORT_WAIT_MS = 10_000;
/** Rejections logged per step; more are counted only (a flood of bad messages must not flood the log). */
const MAX_LOGGED_REJECTIONS = 10;
/** Job states in which no worker has taken the job (yet). */
const QUEUED = new Set(['waiting', 'delayed', 'prioritized', 'waiting-children']);

/**
 * One step's gather. It pops result messages off the run's results list as workers push them (keeping the first
 * valid result per shard, dropping duplicates, rejecting and recomputing bad ones), adding shard k's gradient into
 * the sum as soon as shards 0..k are all in. A job may carry several shards; its worker answers each shard, or,
 * for a job starting at shard 0, shards 0..n with one result whose gradient is their sum, added in shard order
 * from zero as this gather would add them (see ShardResult): it stands for those shards. A shard whose job vanished or failed is added again; nothing a worker
 * sends reaches the model without passing validation.
 *
 * No count of messages ends a step: a shard is attempted again as often as it takes. A bad answer or a failure
 * report only asks for a new attempt when the attempt waited for has been taken by a worker (one still queued
 * will be computed anyway), so that a burst of forged messages costs at most one attempt per job a worker takes.
 * The one way a step gives up is the watchdog's: no valid result for giveUpMs and no responsive worker.
 *
 * A local SGD round is gathered by the same loop (RoundGather, round-gather.ts): it overrides what is particular
 * to a result's kind (validate, read, addShard, attemptAt, keepParams) and nothing of the loop.
 *
 * A BLPOP that the server leaves unanswered fails after POLL_S + 2 s, and a lost connection is retried, so that
 * neither can stall the loop: the watchdog runs every WATCHDOG_MS whatever arrives.
 */
export class StepGather {
  /** Milliseconds spent reading, validating and adding gradients. */
  aggregateMs = 0;
  /** Gradient payload bytes of the results kept (for bytes_per_step). */
  gradientBytes = 0;
  protected readonly pending = new Map<number, Pending>(); // by shard
  private readonly results: Array<ShardResult | undefined>;
  private added = 0; // shards 0..added-1 are in the sum, or empty
  private readonly superseded = new Set<string>(); // job ids of attempts that were added again
  private readonly covered = new Set<number>(); // shards after 0 that a result for shards 0..n brought in
  /** Watchdog ticks in a row at which a job was missing from the queue, by job id. */
  private readonly missing = new Map<string, number>();
  private rejectionsLogged = 0;
  private digest: string | undefined; // paramsDigest of θ, once a result needs it

  /** Gathers the results of the step (to be published with θ = `params`) into `sum`. */
  constructor(
    protected readonly plan: StepPlan,
    protected readonly params: Float32Array,
    private readonly sum: Float32Array,
    protected readonly ctx: GatherContext,
  ) {
    this.results = new Array(plan.shards.length);
  }

  /** Waits for the shards of `jobs`, the step's first attempts (before they are published). */
  expect(jobs: readonly ShardJobSpec[]): void {
    for (const j of jobs) {
      for (const { shard, start, end } of jobShards(j.data)) {
        if (end > start) this.pending.set(shard, { attempt: j.data.attempt, jobId: j.opts.jobId });
      }
    }
  }

  /** Waits for the shards of the step's leases (attempt 0 of each non-empty shard, from the lease holding it). */
  expectLeased(set: LeaseSet): void {
    for (const lease of set.leases) {
      for (let k = lease.shard; k < lease.shard + lease.count; k++) {
        const [start, end] = this.plan.shards[k];
        if (end > start) this.pending.set(k, { attempt: 0, jobId: lease.id });
      }
    }
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
      this.ctx.signal?.throwIfAborted();
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

  /** When the run stops mid-step: removes every job of the step still queued. */
  async withdrawAll(): Promise<void> {
    await this.ctx.publisher.withdraw(new Set([...this.superseded, ...[...this.pending.values()].map((p) => p.jobId)]));
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
      if (this.results[k] !== undefined) this.addShard(k);
      else if (this.pending.has(k)) return; // still waited for
      // else an empty shard of a last, partial batch: nothing to add
    }
  }

  /** Adds shard k's gradient (in grads[k]) into the sum; called in shard order. */
  protected addShard(k: number): void {
    addInto(this.sum, this.ctx.grads[k]);
  }

  /**
   * A result header for shard k of this step, validated (InvalidMessageError otherwise). One computed from a θ of
   * its worker's own (a stepping lease's: it carries that θ's digest) is valid only from this step's θ.
   */
  protected validate(claim: Record<string, unknown>, k: number): ShardResult {
    const result = validateShardResult(claim, { run: this.ctx.runId, step: this.plan.globalStep, shard: k, ranges: this.plan.shards });
    if (result.params !== undefined) {
      this.digest ??= paramsDigest(this.params);
      if (result.params !== this.digest) {
        throw new InvalidMessageError(`computed from θ with digest ${result.params}; θ of step ${this.plan.globalStep} has ${this.digest}`);
      }
    }
    return result;
  }

  /** Reads the accepted result's payload (for shard k, while it has no result) where addShard finds it. */
  protected read(payload: Uint8Array, k: number, result: ShardResult): void {
    const from = `from ${JSON.stringify(result.worker.slice(0, 100))}`;
    if (this.ctx.codec !== 'none' && result.through !== k) {
      throw new InvalidMessageError(`${from}: covers shards ${k}..${result.through}, but compressed shards travel one a result`);
    }
    readCompressedGradientInto(result.codec, this.ctx.codec, payload, this.ctx.grads[k], from);
    this.gradientBytes += payload.byteLength;
  }

  /** Attempt `attempt` at shard `shard`: its job's id, and how to add it. */
  protected attemptAt(shard: number, attempt: number): { jobId: string; add: () => Promise<void> } {
    const job = this.ctx.publisher.job(this.plan, shard, attempt);
    return { jobId: job.opts.jobId, add: () => this.ctx.publisher.add(job) };
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
        throw new InvalidMessageError(
          bytes.reason ?? `result message of ${bytes.length} bytes (at most ${this.ctx.inbox.maxMessageBytes} for this model)`,
        );
      }
      message = readResultMessage(bytes, MAX_HEADER_BYTES, this.ctx.signer);
    } catch (e) {
      if (!(e instanceof InvalidMessageError)) throw e;
      return this.reject(what, e.message); // cannot tell which shard it was for: the watchdog covers it
    }
    // Which shard does it claim to answer? Anything not for this run and step is ignored: another run's, or a
    // late one, about an earlier step (from a worker that was cut off and is back; counted).
    const claim = message.header;
    if (claim.kind === 'release') return this.released(claim, message.gradient.byteLength);
    if (claim.run !== this.ctx.runId || claim.step !== t) {
      if (claim.run === this.ctx.runId && typeof claim.step === 'number' && claim.step < t) this.ctx.counters.late++;
      return;
    }
    const k = claim.shard;
    if (typeof k !== 'number' || !Number.isInteger(k) || k < 0 || k >= this.plan.shards.length) {
      return this.reject(what, `shard ${String(k)} does not exist`);
    }
    const waiting = this.pending.get(k);
    // A failure report: recompute, if it is about the attempt being waited for and a worker took that attempt.
    if ('error' in claim) {
      try {
        const failure = validateShardFailure(claim);
        if (message.gradient.byteLength > 0)
          throw new InvalidMessageError(`failure report with ${message.gradient.byteLength} bytes after it`);
        if (waiting === undefined || failure.attempt !== waiting.attempt) return; // late, or about an earlier attempt
        if (await this.queued(waiting.jobId)) {
          throw new InvalidMessageError(
            `failure report from ${JSON.stringify(failure.worker.slice(0, 100))} about attempt ${failure.attempt}, which no worker has taken`,
          );
        }
        this.ctx.counters.failed++;
        if (this.ctx.roster.failed(failure.worker)) {
          this.ctx.log(
            `${what} shard ${k}: worker ${failure.worker} failed (${JSON.stringify(failure.error.slice(0, 300))}); recomputing ` +
              `(its next failures are counted, not logged, until it delivers a result)`,
          );
        }
        if (failure.error.startsWith(SHM_UNREACHABLE) && this.ctx.sharedMemory?.fallBack()) {
          this.ctx.log(
            `${what}: a worker cannot open the shared memory θ is in (another machine, container or user); θ goes through Redis from now on`,
          );
        }
        await this.keepParams(); // the failure may be θ gone: Redis restarted empty (or in shared memory, see above)
        await this.ctx.publisher.checkResidual(t, k); // or the shard's residual gone, which no retry brings back
        await this.again(k);
      } catch (e) {
        if (!(e instanceof InvalidMessageError)) throw e;
        await this.reject(`${what} shard ${k}`, e.message);
      }
      return;
    }
    if (this.results[k] !== undefined || this.covered.has(k)) {
      this.ctx.counters.duplicates++;
      this.ctx.log(`${what} shard ${k}: duplicate result from ${JSON.stringify(String(claim.worker).slice(0, 100))} ignored`);
      return;
    }
    if (waiting === undefined) return;
    try {
      const result = this.validate(claim, k);
      if (result.through > k && this.results.slice(k + 1, result.through + 1).some((r) => r !== undefined)) {
        return await this.overlapping(result, waiting.jobId);
      }
      this.read(message.gradient, k, result);
      this.results[k] = result;
      for (let j = k; j <= result.through; j++) {
        const p = this.pending.get(j);
        if (j > k) this.covered.add(j);
        if (p === undefined) continue;
        this.pending.delete(j);
        if (p.attempt !== result.attempt) this.superseded.add(p.jobId); // an earlier attempt came first
      }
      this.ctx.roster.delivered(result.worker);
    } catch (e) {
      if (!(e instanceof InvalidMessageError)) throw e;
      // A bad answer from an earlier attempt needs no new one: the attempt waited for is on its way; so is one
      // that no worker has taken yet.
      const earlier = typeof claim.attempt === 'number' && claim.attempt < waiting.attempt;
      const recompute = !earlier && !(await this.queued(waiting.jobId));
      await this.reject(`${what} shard ${k}`, e.message, recompute ? () => this.again(k) : undefined);
    }
  }

  /**
   * A lease handed back (LeaseRelease): the lease set ends after this step; the shards of this step that the lease
   * still owes are computed again (one-step jobs). A release of a set that has ended already changes nothing. When
   * leases of the set are still queued as one is handed back, the worker count was too high: the next sets are
   * made for the leases that found a holder (LeaseBook.tooMany).
   */
  private async released(claim: Record<string, unknown>, trailing: number): Promise<void> {
    const t = this.plan.globalStep;
    try {
      const release = validateLeaseRelease(claim);
      if (trailing > 0) throw new InvalidMessageError(`lease release with ${trailing} bytes after it`);
      const book = this.ctx.leases;
      const set = book?.current;
      if (release.run !== this.ctx.runId || !book || !set || !book.lease(release.lease)) return;
      if (release.step < set.first) {
        throw new InvalidMessageError(`release of lease ${release.lease} from step ${release.step}, before its first step ${set.first}`);
      }
      let queued = 0;
      for (const lease of set.leases) if (lease.id !== release.lease && (await this.queued(lease.id))) queued++;
      if (queued > 0) book.tooMany(set.leases.length - queued);
      await this.endLeases();
      if (release.step > t) return; // nothing of this step owed
      const owed = [...this.pending].filter(([, p]) => p.jobId === release.lease).map(([k]) => k);
      if (owed.length === 0) return;
      this.ctx.log(
        `step ${t}: worker ${JSON.stringify(release.worker.slice(0, 100))} handed lease ${release.lease} back; recomputing shards ${owed.join(', ')}`,
      );
      for (const k of owed) await this.again(k);
    } catch (e) {
      if (!(e instanceof InvalidMessageError)) throw e;
      await this.reject(`step ${t}`, e.message);
    }
  }

  /**
   * Ends the current lease set with this step (LeaseBook.end), telling its holders on the clock: they compute this
   * step if they owe it and end, free for the jobs that recompute what the set will not.
   */
  private async endLeases(): Promise<void> {
    const set = this.ctx.leases?.end();
    if (set !== undefined) await this.ctx.publisher.endLeaseSet(this.plan.globalStep, set).catch(() => undefined);
  }

  /**
   * A valid result for shards 0..n of which some are in already (from attempts of their own): it cannot be used
   * (their gradients would count twice). It is counted as a duplicate; the shards still waiting for the job it
   * came from get no other answer from it, so they are computed again.
   */
  private async overlapping(result: ShardResult, jobId: string): Promise<void> {
    this.ctx.counters.duplicates++;
    this.ctx.log(
      `step ${this.plan.globalStep} shards ${result.shard}..${result.through}: result from ${JSON.stringify(result.worker.slice(0, 100))} ` +
        `ignored (some of its shards are in already)`,
    );
    for (let j = result.shard; j <= result.through; j++) if (this.pending.get(j)?.jobId === jobId) await this.again(j);
  }

  private async reject(what: string, why: string, recompute?: () => Promise<void>): Promise<void> {
    this.ctx.counters.rejected++;
    if (this.rejectionsLogged < MAX_LOGGED_REJECTIONS) {
      this.ctx.log(`${what}: result rejected (${why})${recompute ? '; recomputing' : ''}`);
    } else if (this.rejectionsLogged === MAX_LOGGED_REJECTIONS) {
      this.ctx.log(`step ${this.plan.globalStep}: more results rejected; counted (results_rejected), not logged, for the rest of the step`);
    }
    this.rejectionsLogged++;
    await recompute?.();
  }

  /** True while the job is in the queue untaken (a job that is gone, active or done was taken). */
  private async queued(jobId: string): Promise<boolean> {
    return QUEUED.has(await this.ctx.queue.getJobState(jobId));
  }

  /** Writes θ_t again if it is gone from Redis (restarted empty, flushed): workers without it could not compute. */
  protected async keepParams(): Promise<void> {
    if (await this.ctx.publisher.restoreParams(this.plan.globalStep, this.params)) {
      this.ctx.log(`step ${this.plan.globalStep}: θ was gone from Redis (restarted empty?); written again`);
    }
  }

  /** Adds the shard's job again as a new attempt (not once the run is interrupted). */
  private async again(shard: number): Promise<void> {
    if (this.ctx.signal?.aborted) return;
    const previous = this.pending.get(shard);
    const attempt = (previous?.attempt ?? 0) + 1;
    if (previous) this.superseded.add(previous.jobId);
    // A lease that failed, lost or misanswered a shard holds none of the next steps: the next step regroups.
    if (previous && this.ctx.leases?.lease(previous.jobId)) await this.endLeases();
    const job = this.attemptAt(shard, attempt);
    this.pending.set(shard, { attempt, jobId: job.jobId });
    this.ctx.counters.recomputed++;
    await job.add();
  }

  /**
   * Every WATCHDOG_MS while shards are missing: re-add the jobs that are gone from the queue (writing θ_t again
   * first if it is gone too), and, after REPORT_WAIT_MS without a shard coming in, say what is being waited for and which
   * connected workers are unresponsive (sent nothing for UNRESPONSIVE_MS). A job is gone once it completed or
   * failed (they are removed); a worker pushes its result just after completing it, so a job counts as lost only
   * when it is still gone, with no result, one tick later.
   *
   * The step gives up (GaveUpError) when it has waited giveUpMs without a valid result and no worker is
   * responsive: none is connected, or every connected one is unresponsive.
   */
  private async watchdog(waitedMs: number): Promise<void> {
    const t = this.plan.globalStep;
    const lost: number[] = [];
    let gone = false;
    // A job of several shards is looked at once a tick: its count of ticks missing is the job's, not one per shard.
    const ticksOf = new Map<string, number>(); // this tick: job id → ticks missing in a row (0: there)
    for (const [shard, p] of this.pending) {
      let ticks = ticksOf.get(p.jobId);
      if (ticks === undefined) {
        if (await this.ctx.queue.getJob(p.jobId)) {
          this.missing.delete(p.jobId);
          ticks = 0;
        } else {
          gone = true;
          ticks = (this.missing.get(p.jobId) ?? 0) + 1;
          this.missing.set(p.jobId, ticks);
        }
        ticksOf.set(p.jobId, ticks);
      }
      if (ticks >= 2) lost.push(shard);
    }
    // Jobs gone may be a Redis restarted empty, which took θ too (it is not checked otherwise: it may be large).
    if (gone) await this.keepParams();
    for (const shard of lost) {
      this.ctx.log(`step ${t} shard ${shard}: job ${this.pending.get(shard)?.jobId} is gone without a usable result; recomputing`);
      await this.again(shard);
    }
    if (waitedMs <= REPORT_WAIT_MS && waitedMs < this.ctx.giveUpMs) return;
    const { connected, unresponsive } = await this.ctx.roster.survey(this.ctx.queue);
    const shown = unresponsive.slice(0, 10).join(', ') + (unresponsive.length > 10 ? ', …' : '');
    const workers =
      `${connected} workers connected` +
      (unresponsive.length > 0
        ? `, ${unresponsive.length} unresponsive (no answer for ${UNRESPONSIVE_MS / 1000} s or more): ${shown}`
        : '');
    if (waitedMs >= this.ctx.giveUpMs && connected === unresponsive.length) {
      throw new GaveUpError(
        `step ${t}: no valid result for ${(waitedMs / 1000).toFixed(0)} s and no responsive worker (${workers}); gave up ` +
          `(start workers: gradq worker --queue ${this.ctx.queue.name}; or see their logs)`,
      );
    }
    if (waitedMs > REPORT_WAIT_MS) {
      this.ctx.log(`step ${t}: waiting ${(waitedMs / 1000).toFixed(0)} s for shards ${[...this.pending.keys()].join(', ')}; ${workers}`);
    }
  }
}
