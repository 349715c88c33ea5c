import type { ShardJob, ShardResult } from '@gradq/cluster';
import type { Queue } from 'bullmq';
import { settlesWithin } from './bounded-wait.js';

/**
 * How old the count of connected workers may get before it is asked for again (in the background): at first
 * FIRST_REFRESH_MS after the first ask, doubling with each ask up to WORKER_COUNT_REFRESH_MS, since workers are still connecting
 * while the first steps run (local workers connect during the first step).
 */
export const WORKER_COUNT_REFRESH_MS = 1000;
export const FIRST_REFRESH_MS = 25;
/** How long a step waits for the count while it has none yet (Redis may be down: the gather reports that). */
const FIRST_COUNT_WAIT_MS = 1000;

/**
 * Consecutive shards per job for a step of `shards` shards when `workers` workers are connected: all of them in
 * one job while exactly one worker is connected (one hand-out instead of K, θ fetched once, and one message
 * back: see ShardResult's shards 0..n), one shard a job otherwise (none counted yet included: see below). Which worker computes which shard does not
 * change a result; this only decides how many jobs carry them.
 *
 * Measured here (gradq bench, mlp:784-128-10, batch 512, 4 shards, 2 cores): with one worker, one job a step
 * ran at 0.48-0.51× the in-process trainer against 0.35-0.36× with four; with two workers, ⌈K/N⌉ = 2 shards a
 * job (two jobs a step) ran at 0.30-0.33× against 0.36× with four jobs, the results waiting 3.2-3.6 ms longer
 * beyond the busiest worker's own work (with and without summing shards 0..1 ahead), so it is not done. A
 * 2-worker run whose first two steps were one job each (no worker counted yet) stayed that slow for the rest of
 * the run (0.29× against 0.39×, 3.3 ms against 0.3 ms of queue wait; the cause is not found), so an unknown
 * count is one shard a job.
 */
export function shardsPerJob(shards: number, workers: number): number {
  return workers === 1 ? shards : 1;
}

/**
 * The number of workers connected to the queue, as BullMQ lists them (CLIENT LIST), asked for at the first
 * step and then again in the background once the count is old (see WORKER_COUNT_REFRESH_MS): a step never
 * waits for it once it has one (and at most FIRST_COUNT_WAIT_MS before), and a worker that joins or leaves
 * changes the grouping within about a second.
 */
export class ConnectedWorkers {
  private count: number | undefined;
  private askedAt = -Infinity;
  private asking: Promise<void> | undefined;
  private asks = 0;

  constructor(private readonly queue: Pick<Queue<ShardJob, ShardResult[]>, 'getWorkersCount'>) {}

  /** The count last seen (0 when it could not be had yet). */
  async current(now = performance.now()): Promise<number> {
    const refreshMs = Math.min(WORKER_COUNT_REFRESH_MS, FIRST_REFRESH_MS * 2 ** Math.max(0, this.asks - 1));
    if (this.asking === undefined && now - this.askedAt >= refreshMs) {
      this.askedAt = now;
      this.asks++;
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
