import { leaseJobId, MAX_LEASE_STEPS } from '@gradq/cluster';
import { shardsPerJob } from './job-grouping.js';

/** Auto lease length: about this long a set, from the last step's duration (see LeaseBook.forStep). */
export const LEASE_TARGET_MS = 1000;
/** Auto lease length: at most this many steps a set. */
export const AUTO_LEASE_STEPS = 64;

/** One lease of a set: consecutive shards `shard`..`shard + count - 1`, its BullMQ job id. */
export interface Lease {
  id: string;
  shard: number;
  count: number;
}

/** Leases made together: the same steps [first, end), one lease per worker group, numbered `set`. */
export interface LeaseSet {
  set: number;
  first: number;
  end: number;
  leases: Lease[];
}

/**
 * Which step leases (lease-job.ts) hold which shards. The shards of a step are held by one set of leases, made
 * for the steps from the set's first one to its end, ⌈K/N⌉ consecutive shards a lease for N workers (as one-step
 * jobs are grouped: job-grouping.ts). A new set is made when the last one ran out, when the count of workers
 * changed (a worker joined or left), and after end() (a lease was handed back, failed, or is lost): the step
 * announced for the new set ends the holders of the old one, so a regrouping takes effect at the next step.
 *
 * Who holds which shards never changes a result: a lease's worker computes each step's shards as a one-step job of
 * them would be computed.
 */
export class LeaseBook {
  private held: (LeaseSet & { group: number; workers: number }) | undefined;
  private ended = false;
  private sets = 0;
  /** Workers to lease for while the count is `counted`: fewer, after a hand-back while leases were left untaken. */
  private cap: { counted: number; workers: number } | undefined;

  /**
   * `runId`: the run's; `maxSteps`: steps a set holds at most (0: auto, about LEASE_TARGET_MS of steps, at most
   * `autoCap`: AUTO_LEASE_STEPS, or that many rounds of a local SGD run).
   */
  constructor(
    private readonly runId: string,
    private readonly maxSteps: number,
    private readonly autoCap = AUTO_LEASE_STEPS,
  ) {}

  /**
   * The set that holds step `step` of a step of `shards` shards, `perEpoch` steps an epoch, `workers` workers
   * counted (⌈K/N⌉ shards a lease), the last step having taken `stepMs`; `made` when it is new (its leases are to
   * be added), and then `replaced`: the job ids of the set before it, whose leases no holder needs any more (those
   * still queued are to be withdrawn).
   */
  forStep(
    step: number,
    shards: number,
    perEpoch: number,
    workers: number,
    stepMs: number,
  ): { set: LeaseSet; made: boolean; replaced: string[] } {
    if (this.cap && this.cap.counted !== workers) this.cap = undefined; // a worker joined or left: count again
    const group = shardsPerJob(shards, this.cap?.workers ?? workers);
    const held = this.held;
    if (held && !this.ended && step >= held.first && step < held.end && held.group === group)
      return { set: held, made: false, replaced: [] };
    const epochEnd = (Math.floor(step / perEpoch) + 1) * perEpoch;
    // No worker counted yet (the count comes in the background): one step, whose leases of one shard each a lone
    // worker takes one after another; a longer set kept the others queued until their first holder gave its lease
    // up (1.2 s at the second round of a local SGD run with one worker, a quarter of its time).
    const wanted =
      workers < 1
        ? 1
        : this.maxSteps > 0
          ? this.maxSteps
          : Math.min(this.autoCap, Math.max(1, Math.floor(LEASE_TARGET_MS / Math.max(stepMs, 1e-3))));
    const set = this.sets++;
    const leases: Lease[] = [];
    for (let k = 0; k < shards; k += group) {
      leases.push({ id: leaseJobId(this.runId, step, k, set), shard: k, count: Math.min(group, shards - k) });
    }
    this.held = { set, first: step, end: Math.min(epochEnd, step + Math.min(wanted, MAX_LEASE_STEPS)), leases, group, workers };
    this.ended = false;
    return { set: this.held, made: true, replaced: held?.leases.map((l) => l.id) ?? [] };
  }

  /** The set made last (after end() too: its leases may still be handed back). */
  get current(): LeaseSet | undefined {
    return this.held;
  }

  /** The lease of the current set with job id `id`, if there is one. */
  lease(id: string): Lease | undefined {
    return this.held?.leases.find((l) => l.id === id);
  }

  /**
   * The current set ends after the step in progress: the next step makes a new one. Returns the set's number when
   * this ended it (undefined when it had ended already), for the clock entry that tells its holders.
   */
  end(): number | undefined {
    if (this.held === undefined || this.ended) return undefined;
    this.ended = true;
    return this.held.set;
  }

  /**
   * Only `holding` of the current set's leases found a holder while another was handed back: the worker count is
   * too high (a worker gone whose connection lingers, one busy elsewhere). Until the count changes, sets are made for
   * that many workers, so that no lease waits for a worker that will not come.
   */
  tooMany(holding: number): void {
    if (this.held) this.cap = { counted: this.held.workers, workers: Math.max(1, holding) };
  }

  /** The job ids of the current set's leases (to withdraw those still queued when the run ends). */
  get ids(): string[] {
    return this.held?.leases.map((l) => l.id) ?? [];
  }
}
