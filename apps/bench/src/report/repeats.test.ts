import { describe, expect, it } from 'vitest';
import type { BenchRow } from './bench-result.js';
import { medianRun } from './repeats.js';

/** A row with only the figures medianRun reads set (and a tag to tell the runs apart). */
function row(trainer: BenchRow['trainer'], samples: number, speedup: number, same: boolean | null, tag: string): BenchRow {
  return { trainer, samples_per_s: samples, speedup, same_params: same, queue: tag } as BenchRow;
}

describe('medianRun', () => {
  it('is the one run itself when there is one (no repeats field)', () => {
    const only = row('cluster', 100, 1.2, true, 'a');
    expect(medianRun([only])).toBe(only);
  });

  it('picks the cluster run of the median speedup, not of the median samples/s, and lists every repeat in the order run', () => {
    // b has the median speedup (1.3) though not the median samples/s.
    const runs = [row('cluster', 300, 1.5, true, 'a'), row('cluster', 100, 1.3, true, 'b'), row('cluster', 200, 1.1, true, 'c')];
    expect(medianRun(runs)).toMatchObject({ queue: 'b', speedup: 1.3, samples_per_s: 100, same_params: true });
    expect(medianRun(runs).repeats).toEqual({ samples_per_s: [300, 100, 200], speedup: [1.5, 1.3, 1.1] });
  });

  it('picks the in-process run of the median samples/s (their speedups are all 1), the lower middle one of an even count', () => {
    const runs = [
      row('in-process', 400, 1, null, 'a'),
      row('in-process', 100, 1, null, 'b'),
      row('in-process', 300, 1, null, 'c'),
      row('in-process', 200, 1, null, 'd'),
    ];
    expect(medianRun(runs)).toMatchObject({ queue: 'd', samples_per_s: 200, same_params: null });
  });

  it('says the params differ when any repeat ended elsewhere than its in-process run, whichever run is the median', () => {
    const runs = [row('cluster', 100, 1.0, true, 'a'), row('cluster', 100, 1.2, false, 'b'), row('cluster', 100, 1.4, true, 'c')];
    expect(medianRun(runs).same_params).toBe(false);
    expect(medianRun([runs[0], runs[2], runs[0]]).same_params).toBe(true);
  });

  it('refuses no runs', () => {
    expect(() => medianRun([])).toThrow(/no runs/);
  });
});
