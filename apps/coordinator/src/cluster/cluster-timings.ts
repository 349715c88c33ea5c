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

/** Adds up the cluster's step times into `totals`. */
export class ClusterTimer {
  readonly totals: ClusterTimings = {
    steps: 0, publish: 0, gather: 0, queueWait: 0, workerFetch: 0, workerCompute: 0, workerUpload: 0, aggregate: 0,
  }; // prettier-ignore
  private stepsSeen = 0;
  private readonly busy = new Map<string, number>(); // per worker: its fetch + compute + upload in this step

  /** Adds a step: what the coordinator measured, and what the workers reported (undefined for an empty shard). */
  addStep(results: ReadonlyArray<ShardResult | undefined>, times: StepTimes): void {
    if (this.stepsSeen++ === 0) return;
    const tm = this.totals;
    this.busy.clear();
    for (const r of results) {
      if (r === undefined) continue;
      tm.workerFetch += r.fetchMs;
      tm.workerCompute += r.computeMs;
      tm.workerUpload += r.uploadMs;
      this.busy.set(r.worker, (this.busy.get(r.worker) ?? 0) + r.fetchMs + r.computeMs + r.uploadMs);
    }
    tm.steps++;
    tm.publish += times.publish;
    tm.gather += times.gather;
    tm.queueWait += Math.max(0, times.gather - Math.max(0, ...this.busy.values()) - times.aggregate);
    tm.aggregate += times.aggregate;
  }
}
