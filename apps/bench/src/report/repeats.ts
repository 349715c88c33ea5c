import type { BenchRow } from './bench-result.js';

/**
 * The row that stands for `runs`, the repeats of one trainer (--repeat N, alternated with the in-process runs of
 * the same batch, so that a machine whose speed drifts slows both sides of a ratio alike): the run with the median
 * speedup over its own repeat's in-process run (the in-process runs: the median samples/s), the lower of the two
 * middle ones for an even N, with every repeat's samples/s and speedup in `repeats`. Its figures are one real run's,
 * never a mix of several; `same_params` holds only when every repeat ended with its in-process run's parameters.
 */
export function medianRun(runs: readonly BenchRow[]): BenchRow {
  if (runs.length === 0) throw new Error('medianRun: no runs');
  if (runs.length === 1) return runs[0];
  const key = (r: BenchRow): number => (r.trainer === 'in-process' ? r.samples_per_s : r.speedup);
  const sorted = [...runs].sort((a, b) => key(a) - key(b));
  const median = sorted[Math.floor((sorted.length - 1) / 2)];
  const same = runs.some((r) => r.same_params === null) ? null : runs.every((r) => r.same_params === true);
  return {
    ...median,
    same_params: same,
    repeats: { samples_per_s: runs.map((r) => r.samples_per_s), speedup: runs.map((r) => r.speedup) },
  };
}
