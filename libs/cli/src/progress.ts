/** Something progress can be written to: process.stderr, or a buffer in tests. */
export interface OutputStream {
  write(text: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

/**
 * A one-line progress bar redrawn in place (at most every 100 ms) when the stream is a terminal; silent
 * otherwise, so logs and pipes get only the summary lines the caller prints.
 */
export class ProgressBar {
  private lastDraw = 0;
  private drawn = false;

  constructor(
    private readonly stream: OutputStream,
    private readonly label: string,
    private readonly total: number,
  ) {}

  /**
   * Whether update(done, …) would draw now: on a terminal, 100 ms after the last draw or at the end. A caller that
   * updates often (a training step) asks first, so that it formats its text only when it is shown.
   */
  due(done: number): boolean {
    return this.stream.isTTY === true && (performance.now() - this.lastDraw >= 100 || done >= this.total);
  }

  update(done: number, text: string): void {
    if (!this.due(done)) return;
    this.lastDraw = performance.now();
    const width = 24;
    const filled = Math.round((width * done) / Math.max(1, this.total));
    const bar = '█'.repeat(filled) + '░'.repeat(width - filled);
    const pct = ((100 * done) / Math.max(1, this.total)).toFixed(0).padStart(3);
    let line = `${this.label} ${bar} ${pct}% ${text}`;
    const cols = this.stream.columns ?? 120;
    if (line.length > cols - 1) line = line.slice(0, cols - 1);
    this.stream.write(`\r${line}\x1b[K`);
    this.drawn = true;
  }

  /** Clears the bar so the caller's summary line takes its place. */
  clear(): void {
    if (this.drawn) this.stream.write('\r\x1b[K');
    this.drawn = false;
  }
}

/** 12345.6 → "12,346". */
export function formatCount(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

/**
 * Progress of files being transferred (dataset downloads), for a callback `(file, received, total)`: on a
 * terminal a ProgressBar per file, ended by one line once the file is complete; elsewhere one line per file.
 */
export function transferProgress(stream: OutputStream): (file: string, received: number, total: number | undefined) => void {
  const bars = new Map<string, ProgressBar>();
  const finished = new Set<string>();
  return (file, received, total) => {
    if (finished.has(file)) return;
    const complete = total !== undefined && received >= total;
    let bar = bars.get(file);
    if (!bar) {
      bar = new ProgressBar(stream, file, total ?? 0);
      bars.set(file, bar);
      if (!stream.isTTY) stream.write(`downloading ${file}${total !== undefined ? ` (${mb(total)})` : ''}\n`);
    }
    if (complete) {
      finished.add(file);
      bar.clear();
      if (stream.isTTY) stream.write(`${file} ${mb(received)}\n`);
      return;
    }
    bar.update(received, total === undefined ? mb(received) : `${mb(received)} / ${mb(total)}`);
  };
}

function mb(bytes: number): string {
  return `${(bytes / 1e6).toFixed(1)} MB`;
}
