import { ProgressBar, type OutputStream } from '@gradq/cli';

/**
 * One line per run on stderr: `[2/6] batch 64, 2 workers … 1,234 samples/s in 12.3 s`. On a terminal a bar
 * shows the run under way with its elapsed time and the line is written when it ends; elsewhere (logs, pipes)
 * the line is started when the run starts and finished when it ends, so a long run shows what it is waiting for.
 */
export class RunProgress {
  private index = 0;

  constructor(
    private readonly stream: OutputStream,
    private readonly total: number,
  ) {}

  /** Starts run `label`; call `end` with its result text (or `fail`) when it is over. */
  start(label: string): { end: (result: string) => void; fail: () => void } {
    const index = ++this.index;
    const head = `[${index}/${this.total}] ${label}`;
    const t0 = performance.now();
    const elapsed = (): string => `${((performance.now() - t0) / 1000).toFixed(1)} s`;
    const bar = new ProgressBar(this.stream, `bench ${index}/${this.total}`, this.total);
    const tty = this.stream.isTTY === true;
    let timer: NodeJS.Timeout | undefined;
    if (tty) {
      const draw = (): void => bar.update(index - 1, `${label}  ${elapsed()}`);
      draw();
      timer = setInterval(draw, 250);
      timer.unref();
    } else this.stream.write(`${head} … `);
    const stop = (): void => {
      clearInterval(timer);
      bar.clear();
    };
    return {
      end: (result) => {
        stop();
        this.stream.write(tty ? `${head}: ${result} in ${elapsed()}\n` : `${result} in ${elapsed()}\n`);
      },
      fail: () => {
        stop();
        this.stream.write(tty ? `${head}: failed after ${elapsed()}\n` : `failed after ${elapsed()}\n`);
      },
    };
  }
}
