import { InvalidMessageError, leaseStepJob, type LeaseJob, type ShardResult, type TensorStore } from '@gradq/cluster';
import { planStep, stepsPerEpoch } from '@gradq/data';
import type { ShardProcessor } from './shard-processor.js';

/**
 * A holder with no step to compute for this long (or 4× the longest wait between two steps it has seen, if that is
 * longer) hands its lease back: the coordinator may be waiting for shards that only a job still queued holds, and
 * this worker is the one to take it (fewer workers than leases: one died, or the count was stale).
 */
export const RELEASE_MS = 1000;
/** One wait for the clock blocks at most this long, so that a closing worker hands its lease back soon. */
const BLOCK_MS = 250;

/**
 * Holds step leases (lease-job.ts): waits for each step the run's clock announces, computes the lease's shards of
 * it with the processor (the results a one-step job of them would give), and goes on until the lease's last step,
 * a step announced beyond it or for another set of leases, or a release: no step for RELEASE_MS, or the worker
 * closing (`signal`).
 *
 * θ of the step expected next is asked for right behind each wait, on the same connection: Redis holds that GET
 * until the wait is answered, so θ comes back with the announcement instead of one round trip after it.
 */
export class LeaseHolder {
  constructor(
    private readonly processor: ShardProcessor,
    private readonly tensors: Pick<TensorStore, 'awaitAnnounce'>,
  ) {}

  /** Holds lease `job` (BullMQ id `leaseId`) until it ends; resolves to the results pushed, step after step. */
  async hold(job: LeaseJob, leaseId: string, signal: AbortSignal): Promise<ShardResult[]> {
    this.processor.checkLease(job);
    const perEpoch = stepsPerEpoch(job.trainSamples, job.batch);
    const end = job.step + job.steps;
    if (Math.floor(job.step / perEpoch) !== Math.floor((end - 1) / perEpoch)) {
      throw new InvalidMessageError(`lease job: steps [${job.step}, ${end}) are not within one epoch of ${perEpoch} steps`);
    }
    const results: ShardResult[] = [];
    let next = job.step; // the first step of the lease not computed yet
    let after = '0'; // the clock's entries seen: none yet (the newest one may be a step to compute now)
    let lastStepAt = performance.now();
    let longestGap = 0;
    while (next < end) {
      if (signal.aborted) return this.handBack(job, leaseId, next, results);
      const announced = this.tensors.awaitAnnounce(job.clockKey, after, BLOCK_MS);
      // No await between the two: the GET follows the XREAD on the connection (see the class comment).
      const expected = stepJob(job, next);
      const fetched = after === '0' ? undefined : this.processor.prefetch(expected);
      const entry = await announced;
      await fetched;
      const now = performance.now();
      if (entry === null) {
        if (now - lastStepAt > Math.max(RELEASE_MS, 4 * longestGap)) return this.handBack(job, leaseId, next, results);
        continue;
      }
      after = entry.id;
      if (entry.step < job.step) continue; // announced before this lease began (an older entry)
      if (entry.lease !== job.set) break; // a new set of leases from this step on: this one has ended
      if (entry.step < next) continue; // computed already
      if (entry.step >= end) break; // the run is past the lease (others computed its last steps)
      // A later step than expected: the holder before this one computed up to it (or died on it); the coordinator
      // waits for the step announced last.
      next = entry.step;
      results.push(...(await this.processor.processLeased(next === expected.step ? expected : stepJob(job, next))));
      next++;
      longestGap = Math.max(longestGap, now - lastStepAt);
      lastStepAt = performance.now();
    }
    return results;
  }

  /** Hands the lease back from step `step` on (the coordinator leases it again) and ends it. */
  private async handBack(job: LeaseJob, leaseId: string, step: number, results: ShardResult[]): Promise<ShardResult[]> {
    await this.processor.release(job, leaseId, step);
    return results;
  }
}

/** The one-step job of the lease's shards at global step `step`. */
function stepJob(job: LeaseJob, step: number) {
  const plan = planStep(job.trainSamples, job.batch, job.shards, step);
  return leaseStepJob(job, step, plan.epoch, plan.shards);
}
