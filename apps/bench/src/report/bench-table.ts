import { formatCount } from '@gradq/cli';
import type { BenchReport, BenchRow } from './bench-result.js';

const COLUMNS = [
  'batch', 'trainer', 'samples/s', 'speedup', 'efficiency', 'step ms', 'compute', 'fetch', 'upload', 'queue wait', 'agg+opt',
  'grad KB/step', 'RSS coord MB', 'RSS worker MB', 'same params',
] as const; // prettier-ignore
const LEFT = new Set<string>(['trainer', 'same params']);

/** The results as an aligned text table followed by its notes. */
export function formatBenchTable(report: BenchReport): string {
  const cells = report.rows.map(rowCells);
  const widths = COLUMNS.map((h, i) => Math.max(h.length, ...cells.map((r) => r[i].length)));
  const line = (r: readonly string[]): string =>
    r
      .map((c, i) => (LEFT.has(COLUMNS[i]) ? c.padEnd(widths[i]) : c.padStart(widths[i])))
      .join('  ')
      .trimEnd();
  const out = [line(COLUMNS), widths.map((w) => '-'.repeat(w)).join('  ')];
  let previous: number | undefined;
  for (const [i, row] of report.rows.entries()) {
    if (previous !== undefined && row.batch !== previous) out.push('');
    previous = row.batch;
    out.push(line(cells[i]));
  }
  out.push('', ...report.notes.map((n) => `* ${n}`));
  return `${out.join('\n')}\n`;
}

function rowCells(r: BenchRow): string[] {
  const s = r.step_ms;
  return [
    String(r.batch),
    trainerName(r),
    formatCount(r.samples_per_s),
    speedup(r),
    r.efficiency === null ? '–' : `${(100 * r.efficiency).toFixed(0)}%`,
    ms(s?.step),
    ms(s?.compute),
    ms(s?.param_fetch),
    ms(s?.grad_upload),
    ms(s?.queue_wait),
    ms(s?.aggregate_optimizer),
    r.bytes_per_step === null ? '–' : (r.bytes_per_step.gradients_up / 1000).toFixed(0),
    mb(r.rss_peak_mb.coordinator),
    mb(r.rss_peak_mb.workers_max),
    r.trainer === 'in-process' ? 'reference' : r.same_params === null ? '–' : r.same_params ? '✓' : '✗',
  ];
}

/** `1.31×`, and with repeats the range of every repeat's: `1.31× (1.24–1.37)` (none for the in-process row: all 1). */
function speedup(r: BenchRow): string {
  const all = r.trainer === 'in-process' ? undefined : r.repeats?.speedup;
  if (all === undefined) return `${r.speedup.toFixed(2)}×`;
  return `${r.speedup.toFixed(2)}× (${Math.min(...all).toFixed(2)}–${Math.max(...all).toFixed(2)})`;
}

export function trainerName(r: BenchRow): string {
  if (r.trainer === 'cluster')
    return r.workers === 0 ? 'cluster, external workers' : `cluster, ${r.workers} worker${r.workers === 1 ? '' : 's'}`;
  if (r.trainer === 'numpy') return 'numpy (60000 samples)';
  return r.trainer === 'pytorch' ? 'pytorch, 1 thread' : 'in-process';
}

function ms(v: number | null | undefined): string {
  return v === null || v === undefined ? '–' : v.toFixed(v < 10 ? 2 : 1);
}

function mb(v: number | null): string {
  return v === null ? '–' : v.toFixed(0);
}
