import { constants } from 'node:os';
import type { StopSignal } from './interrupted-error.js';

const SIGNALS: readonly StopSignal[] = ['SIGINT', 'SIGTERM'];

/** The exit code of a process stopped by `signal`, as shells report it: 128 + its number (130, 143). */
export function signalExitCode(signal: StopSignal): number {
  return 128 + constants.signals[signal];
}

/**
 * SIGINT and SIGTERM while a cluster run is on (`docker compose stop` sends SIGTERM). The first aborts `signal`,
 * with the signal's name as its reason, after calling `onFirst`: the run stops cleanly before its next step, or
 * in the step it waits in. A second one exits at once, with one line.
 */
export class StopSignals {
  private readonly controller = new AbortController();
  private readonly handlers = SIGNALS.map((name) => [name, () => this.received(name)] as const);

  constructor(
    private readonly onFirst: (signal: StopSignal) => void,
    private readonly write: (line: string) => void,
  ) {
    for (const [name, handler] of this.handlers) process.on(name, handler);
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  /** Gives the signals back to their default (the process ends at once). */
  uninstall(): void {
    for (const [name, handler] of this.handlers) process.off(name, handler);
  }

  private received(name: StopSignal): void {
    if (!this.controller.signal.aborted) {
      this.onFirst(name);
      this.controller.abort(name);
      return;
    }
    this.write(`gradq: ${name} again: exiting at once (local workers exit with this process; the run's keys expire within 15 minutes)`);
    process.exit(signalExitCode(name));
  }
}
