import { ClusterConfigError } from './cluster-config-error.js';

/**
 * Redis layout of one run. BullMQ keeps its own keys under `gradq:<queue>:…` (the queue's prefix); ours sit
 * beside them under `gradq:<queue>:run:<runId>:…` so that a run's tensors can be found and removed together:
 *
 *   …:params:<version>   θ of parameter version v (= the global step it is for), raw little-endian float32
 *   …:state:<round>:<shard>   the inner optimizer state buffers a local SGD replica starts round <round> (its
 *                        first global step) from, raw little-endian float32, written by the coordinator
 *   …:optimizer:<step>   the optimizer state buffers at synchronous step <step>, the first of a stepping lease
 *                        (lease-job.ts), raw little-endian float32, written by the coordinator
 *   …:clock              a stream: the entries announcing synchronous steps to step leases (once θ_t is
 *                        written) and ending their sets (clock-entry.ts)
 *   …:results            a list: workers RPUSH one result message per shard job (result-message.ts: the
 *                        shard's result and its gradient sum as raw float32), the coordinator BLPOPs them
 *   …:residual:<step>:<k>:<attempt> --compress int8: shard k's error-feedback residual as attempt <attempt>
 *                        at shard k of that step wrote it (residual-store.ts)
 *
 * Every key expires (KEY_TTL_MS) so that a crashed run leaves nothing behind for long.
 */
export const QUEUE_PREFIX = 'gradq';
export const DEFAULT_QUEUE = 'gradq';
export const KEY_TTL_MS = 15 * 60 * 1000;

export interface RunKeys {
  queue: string;
  runId: string;
  /** Prefix of every key of this run (for SCAN … MATCH prefix*). */
  prefix: string;
  params(version: number): string;
  /** params(v) is paramsPrefix + v. */
  paramsPrefix: string;
  clock: string;
  state(round: number, shard: number): string;
  optimizer(step: number): string;
  results: string;
  residual(step: number, shard: number, attempt: number): string;
}

const NAME = /^[A-Za-z0-9_.-]{1,64}$/;

/** The keys of run `runId` on queue `queue`; both must be short names (letters, digits, _ . -). */
export function runKeys(queue: string, runId: string): RunKeys {
  checkName('queue', queue);
  checkName('run id', runId);
  const prefix = `${QUEUE_PREFIX}:${queue}:run:${runId}:`;
  return {
    queue,
    runId,
    prefix,
    params: (version) => `${prefix}params:${version}`,
    paramsPrefix: `${prefix}params:`,
    clock: `${prefix}clock`,
    state: (round, shard) => `${prefix}state:${round}:${shard}`,
    optimizer: (step) => `${prefix}optimizer:${step}`,
    results: `${prefix}results`,
    residual: (step, shard, attempt) => `${prefix}residual:${step}:${shard}:${attempt}`,
  };
}

/** BullMQ job id of a step lease: shards from `shard` on, from step `step` on, the book's `serial`-th lease of the run. */
export function leaseJobId(runId: string, step: number, shard: number, serial: number): string {
  return `${runId}.L${serial}.${step}.${shard}`;
}

/** BullMQ job id of a shard attempt; unique per (run, step, shard, attempt), without ':' as BullMQ requires. */
export function shardJobId(runId: string, step: number, shard: number, attempt: number): string {
  return `${runId}.${step}.${shard}.${attempt}`;
}

/** Throws ClusterConfigError unless `name` (a queue name, run id, worker name) is 1-64 letters, digits, _ . -. */
export function checkName(what: string, name: string): void {
  if (!NAME.test(name)) {
    throw new ClusterConfigError(`invalid ${what} "${name}" (use 1-64 letters, digits, _ . -)`);
  }
}
