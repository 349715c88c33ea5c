/** Called while a file downloads; a last call has received === total when the file is complete. */
export type ProgressReporter = (file: string, received: number, total: number | undefined) => void;

/** Where stderrProgress writes: process.stderr or a test double. */
export interface ProgressStream {
  isTTY?: boolean;
  write(text: string): unknown;
}

const BAR_WIDTH = 30;
const REDRAW_MS = 100;

/** A ProgressReporter that redraws a text bar on a TTY and writes one line per file otherwise. */
export function stderrProgress(stream: ProgressStream = process.stderr): ProgressReporter {
  const started = new Set<string>();
  const finished = new Set<string>();
  let lastDraw = 0;
  return (file, received, total) => {
    if (finished.has(file)) return;
    const complete = total !== undefined && received >= total;
    if (complete) finished.add(file);
    if (!stream.isTTY) {
      if (!started.has(file)) stream.write(`downloading ${file}${total !== undefined ? ` (${mb(total)})` : ''}\n`);
      started.add(file);
      return;
    }
    const now = Date.now();
    if (!complete && started.has(file) && now - lastDraw < REDRAW_MS) return;
    started.add(file);
    lastDraw = now;
    let line = `${file} ${mb(received)}`;
    if (total !== undefined && total > 0) {
      const fraction = Math.min(1, received / total);
      const filled = Math.round(fraction * BAR_WIDTH);
      line = `${file} [${'#'.repeat(filled)}${'.'.repeat(BAR_WIDTH - filled)}] ${Math.floor(fraction * 100)
        .toString()
        .padStart(3)}% ${mb(received)} / ${mb(total)}`;
    }
    stream.write(`\r${line}\x1b[K${complete ? '\n' : ''}`);
  };
}

function mb(bytes: number): string {
  return `${(bytes / 1e6).toFixed(1)} MB`;
}
