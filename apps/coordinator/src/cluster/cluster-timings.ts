import type { ShardResult } from '@gradq/cluster';

/**
 * Milliseconds summed over the steps: where a cluster step's time goes. The first step is left out: it also
 * waits for the workers to start and load the data.
 */
export interface ClusterTimings {
  steps: number;
  publish: number; // writing θ_t and adding the jobs
  gather: number; // from the jobs added to the last result in (wall)
  queueWait: number; // gather minus the busiest worker's fetch + compute + upload for the step, minus aggregate
  workerFetch: number; // per step, summed over shards
  workerCompute: number;
  workerUpload: number;
  aggregate: number; // reading, validating and adding the gradients
}

/** One step's times as the coordinator measured them (see ClusterTimings). */
export interface StepTimes {
  publish: number;
  gather: number;
  aggregate: number;
}

/** One step's phases in milliseconds (see ClusterTimings), the workers' figures summed over the step's shards. */
export interface StepPhases {
  publish: number;
  gather: number;
  queueWait: number;
  workerFetch: number;
  workerCompute: number;
  workerUpload: number;
  aggregate: number;
}

/** Splits each step's time into its phases (`last`) and adds them up into `totals`, the first step left out. */
export class ClusterTimer {
  readonly totals: ClusterTimings = {
    steps: 0, publish: 0, gather: 0, queueWait: 0, workerFetch: 0, workerCompute: 0, workerUpload: 0, aggregate: 0,
  }; // prettier-ignore
  /** The phases of the step added last (one object, overwritten by every step). */
  readonly last: StepPhases = { publish: 0, gather: 0, queueWait: 0, workerFetch: 0, workerCompute: 0, workerUpload: 0, aggregate: 0 };
  private stepsSeen = 0;
  private readonly busy = new Map<string, number>(); // per worker: its fetch + compute + upload in this step

  /** Adds a step: what the coordinator measured, and what the workers reported (undefined for an empty shard). */
  addStep(results: ReadonlyArray<ShardResult | undefined>, times: StepTimes): void {
    const p = this.last;
    p.workerFetch = p.workerCompute = p.workerUpload = 0;
    this.busy.clear();
    for (const r of results) {
      if (r === undefined) continue;
      p.workerFetch += r.fetchMs;
      p.workerCompute += r.computeMs;
      p.workerUpload += r.uploadMs;
      this.busy.set(r.worker, (this.busy.get(r.worker) ?? 0) + r.fetchMs + r.computeMs + r.uploadMs);
    }
    p.publish = times.publish;
    p.gather = times.gather;
    p.queueWait = Math.max(0, times.gather - Math.max(0, ...this.busy.values()) - times.aggregate);
    p.aggregate = times.aggregate;
    if (this.stepsSeen++ === 0) return;
    const tm = this.totals;
    tm.steps++;
    tm.publish += p.publish;
    tm.gather += p.gather;
    tm.queueWait += p.queueWait;
    tm.workerFetch += p.workerFetch;
    tm.workerCompute += p.workerCompute;
    tm.workerUpload += p.workerUpload;
    tm.aggregate += p.aggregate;
  }
}
