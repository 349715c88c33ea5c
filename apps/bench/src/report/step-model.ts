import type { BenchRow } from './bench-result.js';

/**
 * A model of a synchronous cluster step, fitted to one batch's runs of a `gradq bench` invocation:
 *
 *   t_step(N) = compute · c(N) + fixed + perWorker · N + bytes(N) / bandwidth
 *
 * - compute: the in-process run's forward and backward passes per step (all K shards in one process), measured;
 * - c(N): the share of it on the step's critical path with N workers on `cores` cores: a worker computes
 *   ⌈K/N⌉ of the K equal shards, and N processes share the cores: c(N) = max(⌈K/N⌉ / K, 1 / min(N, K, cores));
 * - fixed, perWorker: least squares over the cluster runs of what is left (publish θ, add jobs, gather, the
 *   optimizer: fixed; job hand-out, θ fetches and result messages, which grow with the workers: per worker), both
 *   kept ≥ 0;
 * - bytes(N) / bandwidth: the network the Redis host's link carries (θ down to each worker that has a shard, one
 *   result message up per shard); on loopback, where the runs were measured, this time is already inside the two
 *   fitted terms, so the term is added for projections onto a real network only (counting loopback's transfer
 *   twice there: a projection errs slow).
 */
export interface StepModel {
  batch: number;
  shards: number;
  cores: number;
  /** Parameters of the model (θ and a gradient are 4 bytes each per parameter). */
  parameters: number;
  computeMs: number;
  fixedMs: number;
  perWorkerMs: number;
  /** The measured points beside the model's figure for each. */
  points: Array<{ workers: number; measuredMs: number; modelMs: number }>;
  /** Root mean square of measured − model, over the points. */
  rmsErrorMs: number;
}

/** How a mode changes the step (see projectStep): bytes of a gradient per parameter, steps per synchronisation. */
export interface ProjectedMode {
  name: string;
  /** Bytes a gradient (or a local-SGD delta) takes per parameter on the wire: 4 for float32. */
  gradientBytesPerParameter: number;
  /** Global steps between synchronisations: 1 for synchronous training, H for local SGD (local:H). */
  stepsPerSync: number;
}

/**
 * The modes projected (from the one synchronous fit: their compute is the same per sample, and what they change is
 * the bytes and how often the step's fixed and per-worker costs are paid). int8 is 1 byte per value plus a float32
 * scale per block of 256; fp16 and bf16 are 2 bytes.
 */
export const PROJECTED_MODES: readonly ProjectedMode[] = [
  { name: 'sync', gradientBytesPerParameter: 4, stepsPerSync: 1 },
  { name: 'sync, fp16', gradientBytesPerParameter: 2, stepsPerSync: 1 },
  { name: 'sync, int8', gradientBytesPerParameter: 1 + 4 / 256, stepsPerSync: 1 },
  { name: 'local:8', gradientBytesPerParameter: 4, stepsPerSync: 8 },
];

/** 10 GbE: 1.25 × 10⁹ bytes per second. */
export const TEN_GBE_BYTES_PER_S = 1.25e9;

/** c(N): the critical path's share of a step's compute (see StepModel). */
export function criticalShare(workers: number, shards: number, cores: number): number {
  return Math.max(Math.ceil(shards / workers) / shards, 1 / Math.min(workers, shards, cores));
}

/**
 * Fits the model to the cluster rows of one batch (local workers only; external ones run elsewhere), against that
 * batch's in-process row. Undefined when fewer than two distinct worker counts ran: two terms need two points.
 */
export function fitStepModel(
  inProcess: BenchRow,
  rows: readonly BenchRow[],
  o: { shards: number; cores: number; parameters: number },
): StepModel | undefined {
  const computeMs = inProcess.step_ms?.compute;
  if (computeMs === undefined) return undefined;
  const points = rows
    .filter((r) => r.trainer === 'cluster' && r.batch === inProcess.batch && (r.workers ?? 0) > 0 && r.step_ms !== null)
    .map((r) => ({ workers: r.workers as number, measuredMs: (r.step_ms as NonNullable<BenchRow['step_ms']>).step }));
  if (new Set(points.map((p) => p.workers)).size < 2) return undefined;
  // Least squares of rest(N) = fixed + perWorker · N.
  const rest = points.map((p) => p.measuredMs - computeMs * criticalShare(p.workers, o.shards, o.cores));
  const n = points.length;
  const mx = points.reduce((s, p) => s + p.workers, 0) / n;
  const my = rest.reduce((s, y) => s + y, 0) / n;
  let sxy = 0;
  let sxx = 0;
  for (let i = 0; i < n; i++) {
    sxy += (points[i].workers - mx) * (rest[i] - my);
    sxx += (points[i].workers - mx) ** 2;
  }
  // Neither term can be negative (a cost): where the unconstrained line says so, the best fit with that term at 0.
  let perWorkerMs = sxy / sxx;
  let fixedMs = my - perWorkerMs * mx;
  if (fixedMs < 0) {
    fixedMs = 0;
    perWorkerMs = Math.max(0, points.reduce((s, p, i) => s + p.workers * rest[i], 0) / points.reduce((s, p) => s + p.workers ** 2, 0));
  } else if (perWorkerMs < 0) {
    perWorkerMs = 0;
    fixedMs = Math.max(0, my);
  }
  const model: StepModel = {
    batch: inProcess.batch, shards: o.shards, cores: o.cores, parameters: o.parameters, computeMs, fixedMs, perWorkerMs,
    points: [], rmsErrorMs: 0,
  }; // prettier-ignore
  model.points = points.map((p) => ({ ...p, modelMs: stepMs(model, p.workers, o.shards, o.cores) }));
  model.rmsErrorMs = Math.sqrt(model.points.reduce((s, p) => s + (p.measuredMs - p.modelMs) ** 2, 0) / n);
  return model;
}

/** The model's step with N workers, K shards on `cores` cores, without a network term (as measured: loopback). */
export function stepMs(m: StepModel, workers: number, shards: number, cores: number): number {
  return m.computeMs * criticalShare(workers, shards, cores) + m.fixedMs + m.perWorkerMs * workers;
}

/** Bytes through the Redis host's link in one synchronisation: θ to each of N workers, one message per shard back. */
export function bytesPerSync(m: StepModel, workers: number, shards: number, mode: ProjectedMode): { down: number; up: number } {
  return { down: Math.min(workers, shards) * 4 * m.parameters, up: shards * mode.gradientBytesPerParameter * m.parameters };
}

/**
 * Projected samples/s of N workers, each on a machine of its own (cores = N) and one shard each (K = N, the same
 * global batch), over a network of `bandwidth` bytes/s: the compute shrinks as 1/N, what a synchronisation costs
 * (fixed + per worker + bytes) is paid once every stepsPerSync steps.
 */
export function projectSamplesPerS(m: StepModel, workers: number, mode: ProjectedMode, bandwidth: number): number {
  const { down, up } = bytesPerSync(m, workers, workers, mode);
  const syncMs = m.fixedMs + m.perWorkerMs * workers + ((down + up) / bandwidth) * 1000;
  const ms = m.computeMs / workers + syncMs / mode.stepsPerSync;
  return (m.batch / ms) * 1000;
}
