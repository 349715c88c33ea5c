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
 * Consecutive shards per job for a step of `shards` shards when `workers` workers are connected: ⌈K/N⌉, so that
 * a worker gets at most one job a step (one hand-out instead of several, θ fetched once, and for the job that starts at
 * shard 0 one message back: see ShardResult's shards 0..n); one shard a job while no worker is counted yet. Which
 * worker computes which shard does not change a result; this only decides how many jobs carry them.
 *
 * Measured here (gradq bench, mlp:784-128-10, batch 512, 4 shards, 60,000 samples × 2 epochs, 2 cores, BullMQ 6.7):
 * with one worker, one job a step ran at 0.48-0.51× the in-process trainer against 0.35-0.36× with four; with two
 * workers, two jobs of two shards ran at 0.46× (a step of 8.0 ms, two invocations) against 0.39-0.40× (9.4-9.6 ms)
 * with four jobs of one, and 0.44-0.47× with result pushes leaving on the next tick as before (tensor-connection.ts).
 * An earlier measurement (30,000 samples, another machine) had found two jobs of two slower (0.30-0.33× against
 * 0.36×) without finding why; it is not seen here.
 */
export function shardsPerJob(shards: number, workers: number): number {
  return workers >= 1 ? Math.ceil(shards / workers) : 1;
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
