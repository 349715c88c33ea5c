import type { ShardResult } from '@gradq/cluster';
import type { EpochEvent, StepEvent, TrainObserver } from '@gradq/train';
import type { ClusterStepObserver } from '../cluster/cluster-gradient-source.js';
import type { StepPhases } from '../cluster/cluster-timings.js';
import type { ClusterCounters } from '../cluster/step-gather.js';
import type { ConnectedWorker } from '../cluster/worker-roster.js';

/** Worker names kept (names come from outside: the results' headers). */
const MAX_WORKERS = 1000;
/** A connected worker that delivered a shard this recently is working; otherwise idle. */
export const WORKING_MS = 3000;

/** One applied step as the dashboard and the metrics log keep it (milliseconds; phases only in a cluster run). */
export interface StepRow {
  step: number;
  epoch: number;
  samples: number;
  loss: number; // the batch's mean loss
  accuracy: number;
  lr: number;
  ms: number; // the whole step: gradients and optimizer
  optimizerMs: number;
  /** Unix milliseconds when the step ended. */
  time: number;
  publishMs?: number;
  queueWaitMs?: number;
  fetchMs?: number; // the worker phases summed over the step's shards
  computeMs?: number;
  uploadMs?: number;
  aggregateMs?: number;
}

export type EpochRow = EpochEvent;

/** A worker as the dashboard shows it. */
export interface WorkerRow {
  name: string;
  host: string;
  shards: number;
  meanComputeMs: number;
  /** Unix milliseconds of its last result (0: none yet). */
  lastSeen: number;
  state: 'working' | 'idle' | 'lost';
}

/** What the run is: shown as given, nothing secret in it (the Redis URL is redacted by the caller). */
export interface RunInfo {
  mode: 'local' | 'cluster';
  /** Read back from a metrics log (gradq dashboard): a finished run. */
  replay?: boolean;
  totalSteps: number;
  config: Record<string, string | number | boolean | null>;
}

export type RunStatus = 'running' | 'finished' | 'failed';

/** The cluster parts the state reads when asked (not per step): counters and connections. */
export interface ClusterView {
  counters: Readonly<ClusterCounters>;
  connected: () => readonly ConnectedWorker[];
}

interface WorkerTally {
  name: string;
  /** The host its connection came from, as last seen. */
  host?: string;
  shards: number;
  computeMs: number;
  lastSeen: number;
}

/**
 * The run as it goes, kept for the dashboard, /api/run, /metrics and the metrics log: a row per applied step
 * (with the cluster's phases of that step), a row per epoch, the workers' tallies. It observes the trainer and
 * the cluster source and never steers either.
 */
export class RunState implements TrainObserver, ClusterStepObserver {
  readonly steps: StepRow[] = [];
  readonly epochs: EpochRow[] = [];
  status: RunStatus = 'running';
  /** Bumped on every change: the server pushes only when it moved. */
  version = 0;
  private readonly tallies = new Map<string, WorkerTally>();
  /** Totals for /metrics. */
  readonly totals = {
    samples: 0,
    stepMs: 0,
    phaseMs: { publish: 0, queue_wait: 0, fetch: 0, compute: 0, upload: 0, aggregate: 0, optimizer: 0 },
  };
  private pending: StepPhases | undefined;
  private readonly pendingPhases: StepPhases = {
    publish: 0,
    gather: 0,
    queueWait: 0,
    workerFetch: 0,
    workerCompute: 0,
    workerUpload: 0,
    aggregate: 0,
  };
  private readonly rowListeners: Array<(row: StepRow | EpochRow, kind: 'step' | 'epoch') => void> = [];

  constructor(
    readonly info: RunInfo,
    private readonly cluster?: ClusterView,
  ) {}

  /** Calls `listener` with every step and epoch row from now on (the metrics log). */
  onRow(listener: (row: StepRow | EpochRow, kind: 'step' | 'epoch') => void): void {
    this.rowListeners.push(listener);
  }

  stepGathered(_step: number, phases: Readonly<StepPhases>, results: ReadonlyArray<ShardResult | undefined>): void {
    Object.assign(this.pendingPhases, phases);
    this.pending = this.pendingPhases;
    const now = Date.now();
    for (const r of results) {
      if (r === undefined) continue;
      let t = this.tallies.get(r.worker);
      if (t === undefined) {
        if (this.tallies.size >= MAX_WORKERS) continue;
        t = { name: r.worker, shards: 0, computeMs: 0, lastSeen: 0 };
        this.tallies.set(r.worker, t);
      }
      t.shards++;
      t.computeMs += r.computeMs;
      t.lastSeen = now;
    }
  }

  step(e: Readonly<StepEvent>): void {
    const row: StepRow = {
      step: e.step, epoch: e.epoch, samples: e.samples, loss: e.lossSum / e.samples, accuracy: e.correct / e.samples, lr: e.lr,
      ms: e.sourceMs + e.optimizerMs, optimizerMs: e.optimizerMs, time: Date.now(),
    }; // prettier-ignore
    const p = this.pending;
    if (p !== undefined) {
      row.publishMs = p.publish;
      row.queueWaitMs = p.queueWait;
      row.fetchMs = p.workerFetch;
      row.computeMs = p.workerCompute;
      row.uploadMs = p.workerUpload;
      row.aggregateMs = p.aggregate;
      this.pending = undefined;
    }
    this.addStep(row);
  }

  epoch(e: Readonly<EpochEvent>): void {
    this.addEpoch({ ...e });
  }

  /** Adds a step row (from the trainer, or read back from a metrics log). */
  addStep(row: StepRow): void {
    this.steps.push(row);
    const t = this.totals;
    t.samples += row.samples;
    t.stepMs += row.ms;
    const ph = t.phaseMs;
    ph.optimizer += row.optimizerMs;
    if (row.computeMs === undefined) ph.compute += row.ms - row.optimizerMs;
    else {
      ph.publish += row.publishMs ?? 0;
      ph.queue_wait += row.queueWaitMs ?? 0;
      ph.fetch += row.fetchMs ?? 0;
      ph.compute += row.computeMs;
      ph.upload += row.uploadMs ?? 0;
      ph.aggregate += row.aggregateMs ?? 0;
    }
    this.version++;
    for (const l of this.rowListeners) l(row, 'step');
  }

  addEpoch(row: EpochRow): void {
    this.epochs.push(row);
    this.version++;
    for (const l of this.rowListeners) l(row, 'epoch');
  }

  finish(status: RunStatus): void {
    this.status = status;
    this.version++;
  }

  /** The cluster's counters (duplicates, rejected, recomputed, failed), or undefined for an in-process run. */
  counters(): ClusterCounters | undefined {
    return this.cluster ? { ...this.cluster.counters } : undefined;
  }

  /** The workers: those that delivered a result, and those connected; a worker no longer connected is lost. */
  workers(now = Date.now()): WorkerRow[] {
    if (!this.cluster) return [];
    const connected = new Map(this.cluster.connected().map((c) => [c.name, c]));
    const rows: WorkerRow[] = [];
    for (const t of this.tallies.values()) rows.push(this.workerRow(t, connected.get(t.name), now));
    for (const c of connected.values()) {
      if (!this.tallies.has(c.name)) rows.push(this.workerRow({ name: c.name, shards: 0, computeMs: 0, lastSeen: 0 }, c, now));
    }
    return rows.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  private workerRow(t: WorkerTally, c: ConnectedWorker | undefined, now: number): WorkerRow {
    const state = c === undefined ? 'lost' : now - t.lastSeen < WORKING_MS && this.status === 'running' ? 'working' : 'idle';
    if (c) t.host = c.addr.slice(0, c.addr.lastIndexOf(':'));
    const host = t.host ?? (t.name.includes(':') ? t.name.slice(0, t.name.lastIndexOf(':')) : '');
    return { name: t.name, host, shards: t.shards, meanComputeMs: t.shards > 0 ? t.computeMs / t.shards : 0, lastSeen: t.lastSeen, state };
  }

  /** Everything, for /api/run and a page that connects. */
  snapshot(): RunSnapshot {
    return { info: this.info, status: this.status, steps: this.steps, epochs: this.epochs, ...this.live() };
  }

  /** What changes besides the rows: workers, counters. */
  live(): { workers: WorkerRow[]; counters: ClusterCounters | null; now: number } {
    return { workers: this.workers(), counters: this.counters() ?? null, now: Date.now() };
  }
}

export interface RunSnapshot {
  info: RunInfo;
  status: RunStatus;
  steps: StepRow[];
  epochs: EpochRow[];
  workers: WorkerRow[];
  counters: ClusterCounters | null;
  now: number;
}
