import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { GRADQ_BIN } from '../gradq-bin.js';

/**
 * Node flags of a worker process. A worker's JS heap holds only small objects (job descriptors, replies: about
 * 15 MB live); its tensors and the dataset live outside it. So:
 * - a 1 MB young generation (V8's default grows to 16 MB per semi-space): peak RSS 142-150 MB per worker instead
 *   of 170-185 MB on MNIST (mlp:784-128-10), at the same speed;
 * - an old generation of at most 64 MB, which makes V8 collect before the heap has grown to about twice its live
 *   size: on the default model over 6 epochs, peak RSS 131-136 MB instead of 141-146 MB (two runs each).
 * docker-compose.yml gives its workers the same flags (compose.test.ts checks).
 */
export const WORKER_NODE_FLAGS = ['--max-semi-space-size=1', '--max-old-space-size=64'];

/**
 * N local worker processes (`gradq worker`), each connected to this process by an IPC channel so that it exits
 * when the coordinator goes, even on SIGKILL. Their stderr goes to ours.
 */
export class LocalWorkers {
  private readonly children: ChildProcess[] = [];
  private stopping = false;

  constructor(
    private readonly args: readonly string[],
    private readonly env: NodeJS.ProcessEnv,
    private readonly log: (line: string) => void,
  ) {}

  start(count: number): void {
    for (let i = 0; i < count; i++) {
      const child = spawn(process.execPath, [...process.execArgv, ...WORKER_NODE_FLAGS, GRADQ_BIN, 'worker', ...this.args, '--quiet'], {
        stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
        env: this.env,
      });
      child.on('exit', (code, signal) => {
        if (!this.stopping) this.log(`local worker ${child.pid} exited (${signal ?? `code ${code}`})`);
      });
      this.children.push(child);
    }
  }

  get pids(): number[] {
    return this.children.flatMap((c) => (c.pid === undefined ? [] : [c.pid]));
  }

  /** Peak resident memory (VmHWM, Linux) of each live worker, in MB; empty where /proc is not available. */
  peakRssMb(): number[] {
    return this.pids.flatMap((pid) => {
      try {
        const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
        return m ? [Number(m[1]) / 1024] : [];
      } catch {
        return [];
      }
    });
  }

  /** From now on a worker that exits is not worth a log line (the run is stopping). */
  expectExit(): void {
    this.stopping = true;
  }

  /** SIGTERM to every worker (and SIGCONT, should one be stopped), then wait for them (SIGKILL after 5 s). */
  async stop(): Promise<void> {
    this.stopping = true;
    await Promise.all(
      this.children.map(
        (c) =>
          new Promise<void>((resolve) => {
            if (c.exitCode !== null || c.signalCode !== null) return resolve();
            const kill = setTimeout(() => c.kill('SIGKILL'), 5000);
            c.once('exit', () => {
              clearTimeout(kill);
              resolve();
            });
            c.kill('SIGTERM');
            c.kill('SIGCONT');
          }),
      ),
    );
  }
}
