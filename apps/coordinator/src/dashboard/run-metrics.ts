import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { EpochRow, RunState, StepRow } from './run-state.js';

/** Job counts of the run's queue by state (BullMQ's getJobCounts), read at each scrape. */
export type QueueDepths = () => Promise<Record<string, number>>;

/** Step durations from 1 ms to 30 s. */
const STEP_BUCKETS = [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 30];

/**
 * The run's Prometheus metrics (prom-client) in a registry of their own, with the process metrics. Everything but
 * the step-duration histogram is read from the RunState at scrape time: a step costs one histogram observation.
 */
export function runMetrics(state: RunState, queueDepths?: QueueDepths): Registry {
  const register = new Registry();
  collectDefaultMetrics({ register });
  const registers = [register];
  const total = (name: string, help: string, value: () => number | undefined): void => {
    new Counter({
      name, help, registers,
      collect() {
        const v = value();
        this.reset();
        if (v !== undefined) this.inc(v);
      },
    }); // prettier-ignore
  };
  const gauge = (name: string, help: string, value: () => number | undefined): void => {
    new Gauge({
      name, help, registers,
      collect() {
        const v = value();
        if (v === undefined || Number.isNaN(v)) this.reset();
        else this.set(v);
      },
    }); // prettier-ignore
  };
  const lastStep = (): StepRow | undefined => state.steps[state.steps.length - 1];
  const lastEpoch = (): EpochRow | undefined => state.epochs[state.epochs.length - 1];

  total('gradq_steps_total', 'Optimizer steps applied', () => state.steps.length);
  total('gradq_samples_total', 'Training samples processed in applied steps', () => state.totals.samples);
  total('gradq_epochs_total', 'Epochs finished (with their test evaluation)', () => state.epochs.length);
  gauge('gradq_total_steps', 'Steps the run will take in all', () => state.info.totalSteps);
  gauge('gradq_train_loss', 'Mean training loss of the last step', () => lastStep()?.loss);
  gauge('gradq_train_accuracy', 'Training accuracy of the last step (0..1)', () => lastStep()?.accuracy);
  gauge('gradq_learning_rate', 'Learning rate of the last step', () => lastStep()?.lr);
  gauge('gradq_test_loss', 'Test loss after the last epoch', () => lastEpoch()?.testLoss);
  gauge('gradq_test_accuracy', 'Test accuracy after the last epoch (0..1)', () => lastEpoch()?.testAccuracy);
  const histogram = new Histogram({
    name: 'gradq_step_duration_seconds',
    help: 'Duration of each applied step',
    buckets: STEP_BUCKETS,
    registers,
  });
  state.onRow((row, kind) => {
    if (kind === 'step') histogram.observe((row as StepRow).ms / 1000);
  });
  new Counter({
    name: 'gradq_step_phase_seconds_total',
    help: 'Time spent in each phase of the steps (worker phases summed over the shards, which run in parallel)',
    labelNames: ['phase'],
    registers,
    collect() {
      this.reset();
      for (const [phase, ms] of Object.entries(state.totals.phaseMs)) if (ms > 0) this.inc({ phase }, ms / 1000);
    },
  });
  if (state.counters() !== undefined) {
    total('gradq_duplicates_ignored_total', 'Results for a shard that already had one', () => state.counters()?.duplicates);
    total('gradq_results_rejected_total', 'Result messages that failed validation', () => state.counters()?.rejected);
    total(
      'gradq_shards_recomputed_total',
      'Shard jobs added again (after a rejection, failure or loss)',
      () => state.counters()?.recomputed,
    );
    total('gradq_jobs_failed_total', 'Shards a worker reported it could not compute', () => state.counters()?.failed);
    total('gradq_late_results_ignored_total', 'Result messages about an earlier step of the run', () => state.counters()?.late);
    gauge(
      'gradq_workers_connected',
      'Named worker connections to the queue',
      () => state.workers().filter((w) => w.state !== 'lost').length,
    );
    new Counter({
      name: 'gradq_worker_shards_total', help: 'Shard results taken from each worker', labelNames: ['worker'], registers,
      collect() {
        this.reset();
        for (const w of state.workers()) this.inc({ worker: w.name }, w.shards);
      },
    }); // prettier-ignore
    new Counter({
      name: 'gradq_worker_compute_seconds_total', help: 'Compute time of the shard results taken from each worker', labelNames: ['worker'], registers,
      collect() {
        this.reset();
        for (const w of state.workers()) this.inc({ worker: w.name }, (w.shards * w.meanComputeMs) / 1000);
      },
    }); // prettier-ignore
  }
  if (queueDepths) {
    new Gauge({
      name: 'gradq_queue_jobs', help: 'Jobs in the run\'s queue by state', labelNames: ['state'], registers,
      async collect() {
        this.reset();
        const counts = await queueDepths().catch(() => ({}));
        for (const [s, n] of Object.entries(counts)) this.set({ state: s }, n);
      },
    }); // prettier-ignore
  }
  return register;
}
