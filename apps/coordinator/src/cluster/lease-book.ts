import { leaseJobId } from '@gradq/cluster';

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
  private current: (LeaseSet & { group: number }) | undefined;
  private ended = false;
  private sets = 0;

  /** `runId`: the run's; `maxSteps`: steps a set holds at most (0: auto, about LEASE_TARGET_MS of steps). */
  constructor(
    private readonly runId: string,
    private readonly maxSteps: number,
  ) {}

  /**
   * The set that holds step `step` of a step of `shards` shards, `perEpoch` steps an epoch, `shardsPerJob` shards a
   * group (⌈K/N⌉), the last step having taken `stepMs`; `made` when it is new (its leases are to be added).
   */
  forStep(step: number, shards: number, perEpoch: number, shardsPerJob: number, stepMs: number): { set: LeaseSet; made: boolean } {
    const held = this.current;
    if (held && !this.ended && step >= held.first && step < held.end && held.group === shardsPerJob) return { set: held, made: false };
    const epochEnd = (Math.floor(step / perEpoch) + 1) * perEpoch;
    const wanted =
      this.maxSteps > 0 ? this.maxSteps : Math.min(AUTO_LEASE_STEPS, Math.max(1, Math.floor(LEASE_TARGET_MS / Math.max(stepMs, 1e-3))));
    const set = this.sets++;
    const leases: Lease[] = [];
    for (let k = 0; k < shards; k += shardsPerJob) {
      leases.push({ id: leaseJobId(this.runId, step, k, set), shard: k, count: Math.min(shardsPerJob, shards - k) });
    }
    this.current = { set, first: step, end: Math.min(epochEnd, step + wanted), leases, group: shardsPerJob };
    this.ended = false;
    return { set: this.current, made: true };
  }

  /** The lease of the current set with job id `id`, if there is one. */
  lease(id: string): Lease | undefined {
    return this.current?.leases.find((l) => l.id === id);
  }

  /** The current set ends after the step in progress: the next step makes a new one. */
  end(): void {
    this.ended = true;
  }

  /** The job ids of the current set's leases (to withdraw those still queued when the run ends). */
  get ids(): string[] {
    return this.current?.leases.map((l) => l.id) ?? [];
  }
}
