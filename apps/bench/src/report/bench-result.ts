import { cpus, totalmem } from 'node:os';
import type { BenchPlan } from '../bench-flags.js';
import type { ReferenceResult } from '../runs/reference.js';
import type { StepModel } from './step-model.js';

export type Trainer = 'in-process' | 'cluster' | 'numpy' | 'pytorch';

/** Mean milliseconds per step, split by where the time goes. Absent parts are null (not measured for that trainer). */
export interface StepBreakdown {
  /** Whole step as the coordinator sees it: gradients (scatter + gather, or local compute) + optimizer. */
  step: number;
  /** Forward and backward passes; on the cluster summed over the step's shards (they run in parallel). */
  compute: number;
  /** Workers reading θ from Redis, summed over shards. */
  param_fetch: number | null;
  /** Workers writing gradient sums to Redis, summed over shards. */
  grad_upload: number | null;
  /** Shard jobs waiting in the queue for a worker, summed over shards. */
  queue_wait: number | null;
  /** Coordinator: reading and summing the shard gradients (cluster), and the optimizer update. */
  aggregate_optimizer: number;
}

/** One line of the table and one element of bench.json's rows. */
export interface BenchRow {
  batch: number;
  trainer: Trainer;
  /** Worker processes for a cluster run; null otherwise. */
  workers: number | null;
  /** gradq runs: over the steps after the first (steady_samples_per_s); a reference: as it reports. */
  samples_per_s: number;
  /** gradq runs: the first step's time (a cluster's includes its workers' start-up); null for a reference. */
  first_step_ms: number | null;
  /** samples_per_s over the in-process run of the same batch. */
  speedup: number;
  /** speedup / workers, for cluster runs with local workers. */
  efficiency: number | null;
  step_ms: StepBreakdown | null;
  /**
   * gradq runs: payload bytes of a step, θ read by the shards' jobs and gradients sent up (gradq train --json's
   * bytes_per_step; a cluster run's gradients_up is what its coordinator received, gradients_up_measured). null for a
   * reference.
   */
  bytes_per_step: { params_down: number; gradients_up: number } | null;
  rss_peak_mb: { coordinator: number | null; workers_max: number | null };
  params_sha256: string | null;
  /** Cluster runs: params_sha256 equals the in-process run's for the same batch. */
  same_params: boolean | null;
  test_accuracy: number;
  /** Samples trained per epoch (NumPy: always all 60000). */
  train_samples: number;
  wall_s: number;
  queue?: string;
  /**
   * With --repeat N > 1: every repeat's samples/s and speedup (over that repeat's in-process run), in the order run;
   * the row's other figures are those of the median repeat (repeats.ts).
   */
  repeats?: { samples_per_s: number[]; speedup: number[] };
  /** What the trainer reported: gradq train's JSON summary, or the reference script's last line. */
  raw: Record<string, unknown> | string;
}

export interface Machine {
  cpu_model: string;
  cpus: number;
  memory_mb: number;
  node: string;
  platform: string;
  arch: string;
  date: string;
}

export interface BenchReport {
  machine: Machine;
  config: {
    dataset: 'mnist';
    model: string;
    optimizer: string;
    /** gradq train --sync of every run (absent in reports written before it existed: sync). */
    sync?: string;
    compress: string;
    /** gradq train --shm of every run (absent in reports written before it existed: Redis only). */
    shm?: string;
    shards: number;
    epochs: number;
    train_samples: number;
    workers: number[];
    batches: number[];
    /** gradq bench --repeat (absent in reports written before it existed: 1). */
    repeat?: number;
  };
  rows: BenchRow[];
  /** Why the reference trainer did not run, when it did not. */
  reference_skipped?: string;
  /** With --fit: the step-time model of each batch that had cluster runs at two or more worker counts. */
  fits?: StepModel[];
  notes: string[];
}

export function describeMachine(): Machine {
  const list = cpus();
  return {
    cpu_model: list[0]?.model.trim() ?? 'unknown',
    cpus: list.length,
    memory_mb: Math.round(totalmem() / 2 ** 20),
    node: process.version,
    platform: process.platform,
    arch: process.arch,
    date: new Date().toISOString(),
  };
}

/** The in-process run's row (the baseline of its batch). */
export function inProcessRow(batch: number, s: Record<string, unknown>): BenchRow {
  const step = s.step_ms as { gradients: number; optimizer: number };
  return {
    ...common(batch, s),
    trainer: 'in-process',
    workers: null,
    speedup: 1,
    efficiency: null,
    step_ms: {
      step: step.gradients + step.optimizer, compute: step.gradients, param_fetch: null, grad_upload: null, queue_wait: null,
      aggregate_optimizer: step.optimizer,
    }, // prettier-ignore
    rss_peak_mb: { coordinator: s.rss_peak_mb as number, workers_max: null },
    same_params: null,
  };
}

/** A cluster run's row, compared with the in-process row of the same batch. */
export function clusterRow(base: BenchRow, workers: number, queue: string, s: Record<string, unknown>): BenchRow {
  const step = s.step_ms as { gradients: number; optimizer: number };
  const c = s.cluster_step_ms as Record<'worker_compute' | 'worker_fetch' | 'worker_upload' | 'queue_wait' | 'aggregate', number>;
  const workerRss = (s.worker_rss_peak_mb as number[] | undefined) ?? [];
  const row = common(base.batch, s);
  const speedup = row.samples_per_s / base.samples_per_s;
  return {
    ...row,
    trainer: 'cluster',
    workers,
    speedup,
    efficiency: workers > 0 ? speedup / workers : null,
    step_ms: {
      step: step.gradients + step.optimizer, compute: c.worker_compute, param_fetch: c.worker_fetch, grad_upload: c.worker_upload,
      queue_wait: c.queue_wait, aggregate_optimizer: c.aggregate + step.optimizer,
    }, // prettier-ignore
    rss_peak_mb: { coordinator: s.rss_peak_mb as number, workers_max: workerRss.length > 0 ? Math.max(...workerRss) : null },
    same_params: row.params_sha256 === base.params_sha256,
    bytes_per_step: { params_down: row.bytes_per_step?.params_down ?? 0, gradients_up: s.gradients_up_measured as number },
    queue,
  };
}

/** A reference trainer's row: its own initialisation and data order, so no parameter check. */
export function referenceRow(base: BenchRow, trainer: 'numpy' | 'pytorch', n: ReferenceResult, wallSeconds: number): BenchRow {
  return {
    batch: base.batch,
    trainer,
    workers: null,
    samples_per_s: n.samples_per_s,
    first_step_ms: null,
    speedup: n.samples_per_s / base.samples_per_s,
    efficiency: null,
    step_ms: null,
    bytes_per_step: null,
    rss_peak_mb: { coordinator: null, workers_max: null },
    params_sha256: null,
    same_params: null,
    test_accuracy: n.test_accuracy,
    train_samples: n.train_samples,
    wall_s: wallSeconds,
    raw: n.line,
  };
}

/** The fields every gradq run reports the same way. */
type CommonFields = Pick<
  BenchRow,
  'batch' | 'samples_per_s' | 'first_step_ms' | 'params_sha256' | 'test_accuracy' | 'train_samples' | 'wall_s' | 'raw' | 'bytes_per_step'
>;

function common(batch: number, s: Record<string, unknown>): CommonFields {
  const bytes = s.bytes_per_step as { params_down: number; gradients_up: number } | undefined;
  return {
    batch,
    samples_per_s: (s.steady_samples_per_s as number | null) ?? (s.train_samples_per_s as number),
    first_step_ms: (s.first_step_ms as number | null) ?? null,
    params_sha256: s.params_sha256 as string,
    test_accuracy: s.test_accuracy as number,
    train_samples: s.train_samples as number,
    wall_s: s.wall_s as number,
    bytes_per_step: bytes === undefined ? null : { params_down: bytes.params_down, gradients_up: bytes.gradients_up },
    raw: s,
  };
}

/** The notes under the table (also kept in bench.json). */
export function benchNotes(plan: BenchPlan, referenceNote: string | undefined): string[] {
  const notes = [
    `${plan.model}, ${plan.optimizer}, ${plan.shards} shards per batch for every run, ${plan.epochs} epoch(s) of ${plan.trainSamples} MNIST samples; ` +
      'samples/s: training steps after the first (start-up, data loading, evaluation and the first step excluded; ' +
      "the first step, which in a cluster run also waits for the workers to start, is each row's first_step_ms in bench.json).",
    plan.repeat > 1
      ? `--repeat ${plan.repeat}: the in-process run and each cluster run ${plan.repeat} times, alternately; a row is its median repeat ` +
        '(speedup over the in-process run of the same repeat; in-process: median samples/s), the range of every repeat beside its speedup; efficiency: speedup / workers.'
      : 'speedup: samples/s over the in-process run of the same batch; efficiency: speedup / workers.',
    'step ms: mean per step after the first. compute, fetch (θ from Redis) and upload (until Redis acknowledges the gradient; ' +
      "a worker with several shards computes the next one meanwhile) are summed over a step's shards, which run in parallel " +
      'on the workers, so they can add up to more than the step; queue wait is the rest ' +
      "of the wait for results beyond the busiest worker's own work (job hand-out, transfer, scheduling); agg+opt is the coordinator " +
      'summing the shard gradients plus the optimizer update.',
    `grad KB/step: gradient payload sent up per step (--compress ${plan.compress}; in-process: what K shards would send), from bytes_per_step.`,
    'same params: the cluster run ends with the params_sha256 of the in-process run (the same training, bit for bit).',
    'peak RSS: of the coordinator (or the in-process trainer) and of the largest worker.',
  ];
  if (plan.sync !== 'sync') {
    notes.push(
      `--sync ${plan.sync}: local SGD; a step of the step ms columns is a round (the replicas' inner steps, in round jobs of ⌈K/N⌉ replicas), ` +
        'samples/s count every sample of every inner step; no reference trainer (they train synchronously).',
    );
  }
  if (referenceNote !== undefined) notes.push(referenceNote);
  return notes;
}
