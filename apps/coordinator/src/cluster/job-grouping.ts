import type { ShardJob, ShardResult } from '@gradq/cluster';
import type { Queue } from 'bullmq';
import { settlesWithin } from './bounded-wait.js';

/** How old the count of connected workers may get before it is asked for again (in the background). */
export const WORKER_COUNT_REFRESH_MS = 1000;
/** How long a step waits for the count while it has none yet (Redis may be down: the gather reports that). */
const FIRST_COUNT_WAIT_MS = 1000;

/**
 * Consecutive shards per job for a step of `shards` shards when `workers` workers are connected: as few jobs as
 * there are workers (each job handed out costs a BullMQ round trip and a pause of the worker), with no more
 * shards on one worker than one job per shard would have put there: ceil(K / N). Which worker computes which
 * shard does not change a result; this only decides how many jobs carry them.
 */
export function shardsPerJob(shards: number, workers: number): number {
  return Math.max(1, Math.ceil(shards / Math.max(1, workers)));
}

/**
 * The number of workers connected to the queue, as BullMQ lists them (CLIENT LIST), asked for at the first
 * step and then again in the background once the count is WORKER_COUNT_REFRESH_MS old: a step never waits for
 * it once it has one (and at most FIRST_COUNT_WAIT_MS before), and a worker that joins or leaves changes the
 * grouping within about a second.
 */
export class ConnectedWorkers {
  private count: number | undefined;
  private askedAt = -Infinity;
  private asking: Promise<void> | undefined;

  constructor(private readonly queue: Pick<Queue<ShardJob, ShardResult[]>, 'getWorkersCount'>) {}

  /** The count last seen (0 when it could not be had yet). */
  async current(now = performance.now()): Promise<number> {
    if (this.asking === undefined && now - this.askedAt >= WORKER_COUNT_REFRESH_MS) {
      this.askedAt = now;
      this.asking = this.queue
        .getWorkersCount()
        .then((n) => void (this.count = n))
        .catch(() => undefined) // Redis down: the gather reports that; keep the last count
        .finally(() => (this.asking = undefined));
    }
    if (this.count === undefined && this.asking) await settlesWithin(this.asking, FIRST_COUNT_WAIT_MS);
    return this.count ?? 0;
  }
}
