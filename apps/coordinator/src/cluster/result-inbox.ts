import type { SkippedBulk, TensorStore } from '@gradq/cluster';
import type { TensorRetry } from './tensor-retry.js';

/** BLPOP's timeout: the gather loop wakes at least this often, result or not. */
export const POLL_S = 1;
/** A result message is at most this much larger than the gradient: the header and its padding. */
export const MAX_HEADER_BYTES = 64 * 1024;
/** The pause after a failed BLPOP, before the gather loop goes on (and pops again). */
const RETRY_PAUSE_MS = 500;

/** The run's results list as the coordinator reads it: one message at a time, into one buffer reused by every pop. */
export class ResultInbox {
  /** The longest result message for this model: the fixed part, the longest header read, the gradient. */
  readonly maxMessageBytes: number;
  private buffer = new Uint8Array(0); // where a popped result message lands

  /** Pops off `key` on `tensors` (which blocks in BLPOP meanwhile). */
  constructor(
    private readonly tensors: TensorStore,
    private readonly key: string,
    paramCount: number,
    private readonly retry: TensorRetry,
  ) {
    this.maxMessageBytes = 8 + MAX_HEADER_BYTES + 4 * paramCount;
  }

  /**
   * The next message (a view of the buffer, valid until the next pop), or null after POLL_S seconds, or after a
   * failed BLPOP: that is logged once per outage and retried, by the next pop, after a pause. A message larger
   * than any result for this model is not read into memory (a SkippedBulk says how long it was).
   */
  async pop(step: number): Promise<Uint8Array | SkippedBulk | null> {
    const limit = this.maxMessageBytes;
    const popped = await this.retry.once(`step ${step}: waiting for results`, () =>
      this.tensors.blpop(this.key, POLL_S, (length) => {
        if (length > limit) return 'skip';
        if (this.buffer.byteLength < length) this.buffer = new Uint8Array(Math.min(limit, length + (length >>> 3)));
        return this.buffer;
      }),
    );
    if (popped !== undefined) return popped;
    await new Promise((r) => setTimeout(r, RETRY_PAUSE_MS));
    return null;
  }
}
