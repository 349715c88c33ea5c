import { RedisConnectionError } from '@gradq/cluster';

/** Pauses of untilDone between attempts: the first, and the longest it doubles up to. */
const FIRST_PAUSE_MS = 250;
const LONGEST_PAUSE_MS = 5000;

/** Anything but undefined, which once() returns for a lost connection. */
type Defined = NonNullable<unknown> | null;

/**
 * Commands on the tensor connection (θ writes, result pops) that outlive a lost connection. A failed command is
 * logged once per outage, not once per retry, and a line says when the connection works again. An error reply
 * from Redis is thrown: sending the command again would not help. One per connection: every command on it
 * shares one outage, whichever command notices it first or last.
 */
export class TensorRetry {
  private down = false; // the connection's last command failed

  /** `signal` ends the retries of untilDone (it throws the signal's reason). */
  constructor(
    private readonly log: (line: string) => void,
    private readonly signal?: AbortSignal,
  ) {}

  /** Runs `command` once; undefined when the connection failed (`what` names it in the log). */
  async once<T extends Defined>(what: string, command: () => Promise<T>): Promise<T | undefined> {
    try {
      const result = await command();
      if (this.down) this.log(`${what}: Redis reachable again`);
      this.down = false;
      return result;
    } catch (e) {
      if (!(e instanceof RedisConnectionError)) throw e;
      if (!this.down) this.log(`${what} failed (${e.message}); retrying`);
      this.down = true;
      return undefined;
    }
  }

  /**
   * Runs `command` until it goes through, pausing FIRST_PAUSE_MS after the first failure and twice as long after
   * each next one, up to LONGEST_PAUSE_MS, until the signal aborts. `command` must be safe to send again.
   */
  async untilDone(what: string, command: () => Promise<unknown>): Promise<void> {
    const sent = async (): Promise<true> => {
      await command();
      return true;
    };
    for (let pause = FIRST_PAUSE_MS; !(await this.once(what, sent)); pause = Math.min(2 * pause, LONGEST_PAUSE_MS)) {
      this.signal?.throwIfAborted();
      await new Promise((r) => setTimeout(r, pause));
    }
  }
}
