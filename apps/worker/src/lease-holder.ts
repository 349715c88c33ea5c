import {
  InvalidMessageError,
  leaseRoundJob,
  leaseStepJob,
  readClockEntry,
  type LeaseJob,
  type MessageSigner,
  type RoundResult,
  type ShardResult,
  type StreamEntry,
  type TensorStore,
} from '@gradq/cluster';
import { planStep, stepsPerEpoch } from '@gradq/data';
import { roundEnd } from '@gradq/train';
import { KeptStates, type ShardProcessor } from './shard-processor.js';

/**
 * A holder with no step to compute for this long (or 4× the longest wait between two steps it has seen, if that is
 * longer) hands its lease back: the coordinator may be waiting for shards that only a job still queued holds, and
 * this worker is the one to take it (fewer workers than leases: one died, or the count was stale).
 */
export const RELEASE_MS = 1000;
/** One wait for the clock blocks at most this long, so that a closing worker hands its lease back soon. */
const BLOCK_MS = 250;
/**
 * A stepping lease's holder computes step t once step t - STEPPING_LEAD is announced: with 2, the announcement it
 * needs is normally there by the time it asks (the coordinator has had a whole step to answer the result before),
 * so it neither waits nor idles; results at most this many steps ahead are wasted when the set ends.
 */
export const STEPPING_LEAD = 2;
/** Refused clock entries a hold logs (more are dropped unlogged: a flood of forged entries must not flood the log). */
const MAX_LOGGED_REFUSALS = 3;

/** The results a lease's holder pushed: shard results of its steps, or round results of its rounds. */
export type LeaseResults = Array<ShardResult | RoundResult>;

/** What new clock entries tell the holder of a lease (see clockNews). */
export interface ClockNews {
  /** The newest step of the lease announced for its set (undefined: none among the entries). */
  step?: number;
  /** The set's last step, when an entry ended the set. */
  last?: number;
  /** The lease is over: an entry for a later set of leases, or a step past the lease. */
  over: boolean;
  /** Why entries were refused (malformed, or unsigned when the run has a secret); they are skipped. */
  refused: string[];
}

/**
 * What clock entries (oldest first) tell the holder of `job`. A step announced for another set means the
 * coordinator regrouped from that step on (it has every earlier step's shards): the lease is over, as it is once a
 * step past its end is announced. Entries before the lease's first step are left out.
 */
export function clockNews(entries: readonly StreamEntry[], job: LeaseJob, signer?: MessageSigner): ClockNews {
  const news: ClockNews = { over: false, refused: [] };
  const end = job.step + job.steps;
  for (const e of entries) {
    let entry;
    try {
      entry = readClockEntry(e, job.clockKey, signer);
    } catch (err) {
      if (!(err instanceof InvalidMessageError)) throw err;
      news.refused.push(err.message);
      continue;
    }
    if (entry.step < job.step) continue; // announced before this lease began
    if (entry.set !== job.set || entry.step >= end) news.over = true;
    else {
      news.step = Math.max(news.step ?? entry.step, entry.step);
      if (entry.last) news.last = Math.min(news.last ?? entry.step, entry.step);
    }
  }
  return news;
}

/**
 * Holds step leases (lease-job.ts): waits for each step the run's clock announces (clock-entry.ts), computes the
 * lease's shards of it with the processor (the results a one-step job of them would give), and goes on until the
 * lease's last step, the last step of its set (the coordinator ended the set), a step announced beyond it or for
 * another set of leases, or a release: no step for RELEASE_MS, or the worker closing (`signal`).
 *
 * θ of the step expected next is asked for right behind each wait, on the same connection: Redis holds that GET
 * until the wait is answered, so θ comes back with the announcement instead of one round trip after it.
 *
 * A round lease (job.rounds = H) goes the same way round by round (a round is announced by its first step): each
 * round of its replicas is computed as a round job of them (leaseRoundJob), their states kept from one round to the
 * next (KeptStates), so a holder computes a round only when it computed the round before it, or it is the lease's
 * first (whose states the coordinator wrote): one taken late (its first round is over) hands it back.
 */
export class LeaseHolder {
  constructor(
    private readonly processor: ShardProcessor,
    private readonly tensors: Pick<TensorStore, 'awaitAnnounce'>,
    private readonly log: (line: string) => void = () => undefined,
    /** The run's secret: clock entries without its signature are refused. */
    private readonly signer?: MessageSigner,
  ) {}

  /**
   * Holds lease `job` (BullMQ id `leaseId`) until it ends; resolves to the results pushed, step after step. A lease
   * that fails is handed back first (so that the coordinator recomputes what it owed at once), unless its signature
   * is not the run's: a forged lease is refused unanswered, as a forged job is.
   */
  async hold(job: LeaseJob, leaseId: string, signal: AbortSignal): Promise<LeaseResults> {
    const secret = this.signer !== undefined;
    if (secret) this.processor.checkLease(job);
    const results: LeaseResults = [];
    let next = job.step; // the first step of the lease not computed yet
    let after = '0'; // the clock's entries seen: none yet (the newest one may be a step to compute now)
    try {
      if (!secret) this.processor.checkLease(job); // a signed lease here: a failure to report (no secret to check it)
      const perEpoch = stepsPerEpoch(job.trainSamples, job.batch);
      const end = job.step + job.steps;
      if (Math.floor(job.step / perEpoch) !== Math.floor((end - 1) / perEpoch)) {
        throw new InvalidMessageError(`lease job: steps [${job.step}, ${end}) are not within one epoch of ${perEpoch} steps`);
      }
      const kept = new KeptStates(); // a round lease's replicas' states
      // The lease's state keys are its first round's: a later round's states are the ones kept (none to fetch).
      const later = { stateKeys: job.stateKeys.map(() => ''), stateTs: job.stateTs };
      const roundAt = (step: number) =>
        leaseRoundJob(job, step, roundEnd(step, job.rounds, perEpoch) - step, step === job.step ? job : later);
      let lastStepAt = performance.now();
      let longestGap = 0;
      let refusals = 0;
      while (next < end) {
        if (signal.aborted) return await this.handBack(job, leaseId, next, results);
        const announced = this.tensors.awaitAnnounce(job.clockKey, after, BLOCK_MS);
        // No await between the two: the GET follows the XREAD on the connection (see the class comment).
        const expected = job.rounds > 0 ? roundAt(next) : stepJob(job, next);
        const fetched =
          after === '0' ? undefined : 'replicas' in expected ? this.processor.prefetchRound(expected) : this.processor.prefetch(expected);
        let entries;
        try {
          entries = await announced;
        } finally {
          await fetched; // never rejects; awaited so that no fetch is left running into the next job's
        }
        const now = performance.now();
        if (entries === null) {
          if (idleTooLong(now - lastStepAt, longestGap)) return await this.handBack(job, leaseId, next, results);
          continue;
        }
        after = entries[entries.length - 1].id;
        const news = clockNews(entries, job, this.signer);
        refusals = this.logRefusals(leaseId, news, refusals);
        if (news.over) break;
        if (news.step !== undefined && news.step >= next) {
          // A stepping lease from its first step on (not taken late, not ending with it): θ is stepped here.
          if (job.stepping && news.step === job.step && news.last === undefined) {
            return await this.step(job, leaseId, signal, after, results);
          }
          if ('replicas' in expected) {
            // A round of the lease after the one expected: this holder has not its replicas' states.
            if (news.step !== next) return await this.handBack(job, leaseId, news.step, results);
            results.push(...(await this.processor.processLeasedRound(expected, kept)));
            next = expected.step + expected.steps;
          } else {
            // A later step than expected: the holder before this one computed up to it (or died on it); the
            // coordinator waits for the step announced last.
            next = news.step;
            results.push(...(await this.processor.processLeased(next === expected.step ? expected : stepJob(job, next))));
            next++;
          }
          longestGap = Math.max(longestGap, now - lastStepAt);
          lastStepAt = performance.now();
        }
        if (news.last !== undefined && news.last < next) break; // the set ended with a step computed
      }
      return results;
    } catch (e) {
      // A set that a newer one ended while this holder computed (a lease taken late, as the coordinator regrouped:
      // θ of the step may be gone already) is over, not failed: the clock's entries since the last one seen say so.
      if (await this.endedMeanwhile(job, after)) return results;
      await this.handBack(job, leaseId, next, results).catch(() => undefined);
      throw e;
    }
  }

  /** Whether the clock, read without waiting, holds an entry after `after` that ends lease `job` (clockNews). */
  private async endedMeanwhile(job: LeaseJob, after: string): Promise<boolean> {
    const entries = await this.tensors.awaitAnnounce(job.clockKey, after, 0).catch(() => null);
    return entries !== null && clockNews(entries, job, this.signer).over;
  }

  /**
   * The rest of stepping lease `job` (lease-job.ts), from its first step, announced: each step is computed from
   * this holder's θ as soon as the step STEPPING_LEAD before it is announced for the set, so up to that many steps
   * ahead of the coordinator, which meanwhile gathers and checks the results before it and steps its own θ; θ is
   * stepped here by the same update (ShardProcessor.processStepping), so that no step waits for θ from the
   * coordinator. The clock is read without blocking as each step's compute starts (the answer waits in the socket
   * until the step is done), and waited on only when the coordinator is that far behind. The lease ends as another
   * one does (its last step, its set's, another set or a release), or when a sum is not finite. `after`: the
   * clock's entries seen.
   */
  private async step(job: LeaseJob, leaseId: string, signal: AbortSignal, after: string, results: LeaseResults): Promise<LeaseResults> {
    const stepper = await this.processor.startStepping(job);
    const end = job.step + job.steps;
    const clock = { announced: job.step, last: undefined as number | undefined, over: false, after, refusals: 0 };
    const absorb = (entries: StreamEntry[] | null): void => {
      if (entries === null) return;
      clock.after = entries[entries.length - 1].id;
      const news = clockNews(entries, job, this.signer);
      clock.refusals = this.logRefusals(leaseId, news, clock.refusals);
      clock.over ||= news.over;
      if (news.step !== undefined) clock.announced = Math.max(clock.announced, news.step);
      if (news.last !== undefined) clock.last = Math.min(clock.last ?? news.last, news.last);
    };
    let reading: Promise<StreamEntry[] | null> | undefined; // the read sent with the last step's compute
    let lastStepAt = performance.now();
    let longestGap = 0;
    for (let t = job.step; t < end; t++) {
      if (reading) absorb(await reading);
      reading = undefined;
      while (!clock.over && clock.announced < t - STEPPING_LEAD && (clock.last === undefined || clock.last >= t)) {
        if (signal.aborted) return await this.handBack(job, leaseId, t, results);
        const entries = await this.tensors.awaitAnnounce(job.clockKey, clock.after, BLOCK_MS);
        if (entries === null && idleTooLong(performance.now() - lastStepAt, longestGap)) {
          return await this.handBack(job, leaseId, t, results);
        }
        absorb(entries);
      }
      if (clock.over || (clock.last !== undefined && t > clock.last)) break;
      if (signal.aborted) return await this.handBack(job, leaseId, t, results);
      reading = this.tensors.awaitAnnounce(job.clockKey, clock.after, 0);
      reading.catch(() => undefined); // handled: awaited at the next step, or dropped when this one fails
      const update = t + 1 < end && (clock.last === undefined || t < clock.last);
      const stepped = await this.processor.processStepping(stepJob(job, t), stepper, update);
      results.push(...stepped.results);
      if (!stepped.updated) break;
      const now = performance.now();
      longestGap = Math.max(longestGap, now - lastStepAt);
      lastStepAt = now;
    }
    await reading?.catch(() => null); // no read left running into the next job
    return results;
  }

  /** Logs the first MAX_LOGGED_REFUSALS refused clock entries of a hold; returns the count so far. */
  private logRefusals(leaseId: string, news: ClockNews, refusals: number): number {
    for (const why of news.refused)
      if (refusals++ < MAX_LOGGED_REFUSALS) this.log(`${this.processor.name}: lease ${leaseId}: ${why}; ignored`);
    return refusals;
  }

  /** Hands the lease back from step `step` on (the coordinator leases it again) and ends it. */
  private async handBack(job: LeaseJob, leaseId: string, step: number, results: LeaseResults): Promise<LeaseResults> {
    await this.processor.release(job, leaseId, step);
    return results;
  }
}

/** Whether a holder that has waited `idleMs` for a step hands its lease back (see RELEASE_MS). */
function idleTooLong(idleMs: number, longestGapMs: number): boolean {
  return idleMs > Math.max(RELEASE_MS, 4 * longestGapMs);
}

/** The one-step job of the lease's shards at global step `step`. */
function stepJob(job: LeaseJob, step: number) {
  const plan = planStep(job.trainSamples, job.batch, job.shards, step);
  return leaseStepJob(job, step, plan.epoch, plan.shards);
}
