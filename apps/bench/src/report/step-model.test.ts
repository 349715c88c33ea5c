import { describe, expect, it } from 'vitest';
import type { BenchRow } from './bench-result.js';
import {
  bytesPerSync,
  criticalShare,
  fitStepModel,
  PROJECTED_MODES,
  projectSamplesPerS,
  stepMs,
  TEN_GBE_BYTES_PER_S,
} from './step-model.js';

/** fitStepModel's model, which these points must give. */
function fitted(...args: Parameters<typeof fitStepModel>) {
  const m = fitStepModel(...args);
  if (m === undefined) throw new Error('no model fitted');
  return m;
}

/** A projected mode by name. */
function mode(name: string) {
  const m = PROJECTED_MODES.find((x) => x.name === name);
  if (m === undefined) throw new Error(`no mode ${name}`);
  return m;
}

/** A bench row with just what the model reads. */
function row(trainer: 'in-process' | 'cluster', workers: number | null, step: number, compute: number): BenchRow {
  return {
    batch: 512, trainer, workers, samples_per_s: 512 / step, first_step_ms: null, speedup: 1, efficiency: null,
    step_ms: { step, compute, param_fetch: null, grad_upload: null, queue_wait: null, aggregate_optimizer: 0 },
    rss_peak_mb: { coordinator: null, workers_max: null }, bytes_per_step: null, params_sha256: null, same_params: null, test_accuracy: 0,
    train_samples: 0, wall_s: 0, raw: {},
  }; // prettier-ignore
}

describe('criticalShare', () => {
  it('is the busiest worker’s shards, or the share of the cores when workers outnumber them', () => {
    // 4 shards on 2 cores: 1 worker computes all; 2 workers 2 each; 3 workers ⌈4/3⌉ = 2 of 4; 4 workers 1 each, but 2 cores.
    expect([1, 2, 3, 4].map((n) => criticalShare(n, 4, 2))).toEqual([1, 0.5, 0.5, 0.5]);
    // Enough cores: 1/K at N ≥ K.
    expect([1, 2, 4, 8].map((n) => criticalShare(n, 4, 64))).toEqual([1, 0.5, 0.25, 0.25]);
    expect(criticalShare(16, 16, 16)).toBe(1 / 16);
  });
});

describe('fitStepModel', () => {
  const base = row('in-process', null, 10.1, 10);
  const o = { shards: 4, cores: 8, parameters: 101_770 };
  const truth = (n: number): number => 10 * criticalShare(n, 4, 8) + 1.5 + 0.75 * n;

  it('recovers the fixed and per-worker terms of points made by the model, with no error', () => {
    const rows = [base, ...[1, 2, 3, 4].map((n) => row('cluster', n, truth(n), 0))];
    const m = fitted(base, rows, o);
    expect(m.computeMs).toBe(10);
    expect(m.fixedMs).toBeCloseTo(1.5, 10);
    expect(m.perWorkerMs).toBeCloseTo(0.75, 10);
    expect(m.rmsErrorMs).toBeCloseTo(0, 10);
    expect(m.points.map((p) => p.workers)).toEqual([1, 2, 3, 4]);
    for (const p of m.points) expect(p.modelMs).toBeCloseTo(truth(p.workers), 10);
  });

  it('is the least-squares line through noisy points (numpy.polyfit of the rest against N gives the same)', () => {
    // rest(N) = step − compute × c(N): 2.4, 2.9, 4.1, 4.4 at N = 1..4; numpy.polyfit([1,2,3,4], [2.4,2.9,4.1,4.4], 1)
    // = [0.72, 1.65]; residuals 0.03, −0.19, 0.29, −0.13: rms 0.18574175621006683.
    const rest = [2.4, 2.9, 4.1, 4.4];
    const rows = [base, ...rest.map((y, i) => row('cluster', i + 1, 10 * criticalShare(i + 1, 4, 8) + y, 0))];
    const m = fitted(base, rows, o);
    expect(m.perWorkerMs).toBeCloseTo(0.72, 10);
    expect(m.fixedMs).toBeCloseTo(1.65, 10);
    expect(m.rmsErrorMs).toBeCloseTo(0.18574175621006683, 10);
  });

  it('needs two worker counts of that batch (external workers and other batches do not count)', () => {
    const other = { ...row('cluster', 2, 5, 0), batch: 64 };
    expect(fitStepModel(base, [base, row('cluster', 1, 12, 0), row('cluster', 0, 3, 0), other], o)).toBeUndefined();
  });
});

describe('projectSamplesPerS', () => {
  const m = {
    batch: 512,
    shards: 4,
    cores: 2,
    parameters: 100_000,
    computeMs: 32,
    fixedMs: 1,
    perWorkerMs: 0.5,
    points: [],
    rmsErrorMs: 0,
  };

  it('adds the Redis link’s bytes at the bandwidth to the compute per worker and the fitted terms', () => {
    // N = 16, sync: θ 16 × 400 kB down, 16 × 400 kB up = 12.8 MB at 1.25 GB/s = 10.24 ms; 32/16 + 1 + 8 + 10.24 = 21.24 ms.
    const sync = mode('sync');
    expect(bytesPerSync(m, 16, 16, sync)).toEqual({ down: 6_400_000, up: 6_400_000 });
    expect(projectSamplesPerS(m, 16, sync, TEN_GBE_BYTES_PER_S)).toBeCloseTo(512 / 0.02124, 6);
    // local:8 pays the synchronisation once in 8 steps: 2 + 19.24 / 8.
    const local = mode('local:8');
    expect(projectSamplesPerS(m, 16, local, TEN_GBE_BYTES_PER_S)).toBeCloseTo(512 / ((2 + 19.24 / 8) / 1000), 6);
    // int8: 1 byte and a 4-byte scale per 256 values up.
    const int8 = mode('sync, int8');
    expect(bytesPerSync(m, 16, 16, int8).up).toBeCloseTo(16 * 100_000 * (1 + 4 / 256), 6);
  });

  it('measured-point figures use no network term: compute share + fixed + per worker', () => {
    expect(stepMs(m, 2, 4, 2)).toBe(16 + 1 + 1);
  });
});

describe('fitStepModel on points that would give a negative cost', () => {
  it('keeps both terms ≥ 0: the least-squares line through the origin when the fixed term would be negative', () => {
    const base = row('in-process', null, 10.1, 10);
    const o = { shards: 4, cores: 8, parameters: 1 };
    // rest(N) = 1, 5 at N = 1, 2: the line is 4N − 3; through the origin, Σ N·y / Σ N² = 11/5.
    const rows = [base, row('cluster', 1, 10 + 1, 0), row('cluster', 2, 5 + 5, 0)];
    const m = fitted(base, rows, o);
    expect(m.fixedMs).toBe(0);
    expect(m.perWorkerMs).toBeCloseTo(11 / 5, 10);
    // rest falling with N: a constant, the mean.
    const falling = fitted(base, [base, row('cluster', 1, 10 + 5, 0), row('cluster', 2, 5 + 1, 0)], o);
    expect([falling.fixedMs, falling.perWorkerMs]).toEqual([3, 0]);
  });
});
