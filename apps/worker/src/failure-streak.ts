import { InputError } from '@gradq/cli';
import { InvalidMessageError, RedisConnectionError, RedisReplyError } from '@gradq/cluster';

/** Jobs in a row that fail by the worker's own fault after which it stops (see FailureStreak). */
export const STOP_AFTER_FAILURES = 5;
/** The pause after the first such failure; it doubles with each next one (0.5, 1, 2, 4 s). */
export const FIRST_PAUSE_MS = 500;

/**
 * True when a failed job says something about the worker that ran it: not a job that is itself bad (its
 * descriptor, its θ, a model or dataset it names: InvalidMessageError), nor Redis failing (which the coordinator
 * sees as well and outlives), but its own data folder, memory or code. Such failures are counted by
 * FailureStreak; the others never stop a worker, so that no job pushed from outside can.
 */
export function isWorkersOwnFailure(e: unknown): boolean {
  return !(e instanceof InvalidMessageError || e instanceof RedisConnectionError || e instanceof RedisReplyError);
}

/**
 * The worker's own failures in a row (isWorkersOwnFailure), and what to do after each: pause before taking the
 * next job, FIRST_PAUSE_MS doubling each time, so that healthy workers take the shard's new attempt (a worker
 * that fails at once would otherwise win every one); after STOP_AFTER_FAILURES, stop. A job computed ends the
 * streak; a failure that is not the worker's own neither counts nor ends it.
 */
export class FailureStreak {
  private count = 0;
  private last = '';

  constructor(
    private readonly limit = STOP_AFTER_FAILURES,
    private readonly firstPauseMs = FIRST_PAUSE_MS,
  ) {}

  succeeded(): void {
    this.count = 0;
  }

  /** After a failed job: milliseconds to take no job for (0: go on), or 'stop'. */
  failed(e: unknown): number | 'stop' {
    if (!isWorkersOwnFailure(e)) return 0;
    this.count++;
    this.last = e instanceof Error ? e.message : String(e);
    return this.count >= this.limit ? 'stop' : this.firstPauseMs * 2 ** (this.count - 1);
  }

  /** Why the worker stops, once failed() has said 'stop'. */
  stopError(worker: string): WorkerFailingError {
    return new WorkerFailingError(
      `worker ${worker}: ${this.count} jobs in a row failed here (the last: ${this.last.slice(0, 300)}); stopping: fix the cause (its data folder, its memory) and start it again`,
    );
  }
}

/** A worker that cannot compute shards: it stops rather than fail every job it takes. */
export class WorkerFailingError extends InputError {
  override name = 'WorkerFailingError';
}
