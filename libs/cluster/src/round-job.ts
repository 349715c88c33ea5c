import { MAX_SHIFT } from '@gradq/data';
import { OPTIMIZER_NAMES } from '@gradq/nn';
import { InvalidMessageError } from './invalid-message-error.js';
import { JobSignature } from './job-signature.js';
import { checkExpected, checkFields, int, ms, num, pos, str, type Check } from './message-fields.js';
import type { ShardResult } from './shard-job.js';
import type { MessageSigner } from './signing.js';

/** BullMQ's job name of a local SGD round job (a synchronous step's job is named 'shard'). */
export const ROUND_JOB_NAME = 'round';

/**
 * The job of consecutive replicas (shards) `shard`..`shard + replicas - 1` of a local SGD round (`--sync local:H`),
 * BullMQ job data (JSON): everything a worker needs to run libs/train's replicaRound, and no tensor. The round
 * covers the global steps [step, step + steps) of one epoch; the worker recomputes their StepPlans from
 * trainSamples, batch and shards (libs/data's planStep and epochOrder of seed), runs each replica in turn from θ
 * (paramsKey, fetched once) and its inner optimizer state (stateKeys[i]: the state's buffers, written by the
 * coordinator for this round and replica; '' when the optimizer keeps none; stateTs[i] its step counter) with an
 * inner optimizer made from the ReplicaSpec fields (optimizer … totalSteps), and pushes one result message per
 * replica: a RoundResult, then Δ_k and the new state's buffers (float32). The coordinator adopts that state only
 * when it accepts the result, and writes it for the next round itself: a recomputation reads what the first
 * attempt read and gives the same bits; an old or late result changes nothing.
 */
/**
 * The run's optimizer as a job carries it (a ReplicaSpec's fields, libs/train, and the run's epochs): round jobs'
 * inner optimizer, a stepping lease's optimizer.
 */
export interface JobOptimizer {
  optimizer: string;
  lr: number;
  schedule: string;
  warmup: number;
  momentum: number;
  weightDecay: number;
  epochs: number;
}

export interface RoundJob extends JobOptimizer {
  // round job version 2 (a job named 'round'; version 1 carried one replica); an older worker refuses it (field v)
  v: 2;
  kind: 'round';
  run: string;
  step: number; // the round's first global step; also the version of θ it starts from
  steps: number; // global steps in the round (H, or fewer at an epoch's end)
  shard: number; // the job's first replica
  replicas: number; // replicas in the job, from `shard` on
  shards: number; // K
  attempt: number;
  dataset: string;
  trainSamples: number;
  seed: number;
  batch: number;
  model: string;
  shift: number;
  paramsKey: string;
  /** Keys of the replicas' inner optimizer states for this round; '' each when the optimizer keeps no buffers. */
  stateKeys: string[];
  stateBuffers: number;
  /** The states' step counters (kept as they are by a replica that takes no step in the round). */
  stateTs: number[];
  resultsKey: string;
  sig?: string;
}

/**
 * A worker's answer to a round job: the header of its result message, followed by Δ_k (paramCount float32) and
 * the `stateBuffers` buffers of the replica's new inner optimizer state (paramCount float32 each). The shard result
 * fields mean what they mean for a synchronous shard (count: samples over the round's steps; through = shard).
 */
export interface RoundResult extends Omit<ShardResult, 'v' | 'codec' | 'params'> {
  v: 1;
  kind: 'round';
  /** Inner steps the replica took (steps of the round whose shard k is not empty). */
  steps: number;
  /** The inner optimizer's step counter at the round's end. */
  stateT: number;
}

/** Replicas a round job may carry (K is at most the batch; a job carries at most K). */
const MAX_REPLICAS = 65_536;

/** The checks of a JobOptimizer's fields. */
export const OPTIMIZER_FIELDS: Record<keyof JobOptimizer, Check> = {
  optimizer: (v) => (OPTIMIZER_NAMES as readonly unknown[]).includes(v), lr: (v) => num(v) && (v as number) > 0,
  schedule: str, warmup: int, momentum: num, weightDecay: num, epochs: pos,
}; // prettier-ignore

/** The checks of a list of replica state keys, and of their step counters (a round job's, a round lease's). */
export const stateKeyList: Check = (v) =>
  Array.isArray(v) && v.length <= MAX_REPLICAS && v.every((k) => typeof k === 'string' && k.length <= 256);
export const stateTList: Check = (v) => Array.isArray(v) && v.length <= MAX_REPLICAS && v.every(int);

const JOB_FIELDS: Record<Exclude<keyof RoundJob, 'sig'>, Check> = {
  v: (v) => v === 2, kind: (v) => v === 'round', run: str, step: int, steps: pos, shard: int, replicas: pos, shards: pos, attempt: int,
  dataset: str, trainSamples: pos, seed: int, batch: pos, model: str, shift: (v) => int(v) && (v as number) <= MAX_SHIFT,
  ...OPTIMIZER_FIELDS, paramsKey: str,
  stateKeys: stateKeyList, stateBuffers: int, stateTs: stateTList, resultsKey: str,
}; // prettier-ignore

const RESULT_FIELDS: Record<keyof RoundResult, Check> = {
  v: (v) => v === 1, kind: (v) => v === 'round', run: str, step: int, shard: int, through: int, attempt: int, count: int,
  lossSum: num, correct: int, worker: str, fetchMs: ms, computeMs: ms, uploadMs: ms, steps: int, stateT: int,
}; // prettier-ignore

/** A job's data as a RoundJob, or InvalidMessageError naming the first bad field. */
export function validateRoundJob(data: unknown): RoundJob {
  const job = checkFields<RoundJob>('round job', data, JOB_FIELDS);
  if (job.shard + job.replicas > job.shards) {
    throw new InvalidMessageError(`round job: replicas ${job.shard}..${job.shard + job.replicas - 1} of ${job.shards} shards`);
  }
  if (job.shards > job.batch) throw new InvalidMessageError(`round job: ${job.shards} shards of a batch of ${job.batch}`);
  checkReplicaStates('round job', job, job.replicas);
  return job;
}

/**
 * Throws InvalidMessageError (prefixed `what`) unless `job` names a state key and a step counter for each of its
 * `replicas` replicas, every key '' exactly when the optimizer keeps no state buffers (a round job's, a round
 * lease's).
 */
export function checkReplicaStates(what: string, job: Pick<RoundJob, 'stateKeys' | 'stateTs' | 'stateBuffers'>, replicas: number): void {
  for (const [name, list] of [
    ['state keys', job.stateKeys],
    ['state counters', job.stateTs],
  ] as const) {
    if (list.length !== replicas) throw new InvalidMessageError(`${what}: ${list.length} ${name} for ${replicas} replicas`);
  }
  const key = job.stateKeys.find((k) => (k === '') !== (job.stateBuffers === 0));
  if (key !== undefined) {
    throw new InvalidMessageError(`${what}: state key ${JSON.stringify(key)} for ${job.stateBuffers} state buffers`);
  }
}

/** A round job's signature: over every field but `sig`, in the order of JOB_FIELDS. */
const SIGNATURE = new JobSignature<RoundJob>('round-job', Object.keys(JOB_FIELDS) as Array<keyof typeof JOB_FIELDS>);

/** `job` with its signature (`sig`, kind 'round-job'). */
export function signRoundJob(job: RoundJob, signer: MessageSigner): RoundJob {
  return SIGNATURE.sign(job, signer);
}

/** As checkShardJobSignature, for a (validated) round job. */
export function checkRoundJobSignature(job: RoundJob, signer: MessageSigner | undefined): void {
  SIGNATURE.check(job, signer);
}

/**
 * A round result header as a RoundResult for the expected (run, step, shard) whose replica covers `count` samples
 * in `steps` inner steps and ends with inner step counter `stateT`: the coordinator computes all three from the
 * round's plans, so that a result claiming other work is refused.
 */
export function validateRoundResult(
  data: unknown,
  expected: Pick<RoundResult, 'run' | 'step' | 'shard' | 'count' | 'steps' | 'stateT'>,
): RoundResult {
  const r = checkFields<RoundResult>('round result', data, RESULT_FIELDS);
  checkExpected('round result', r, expected, ['run', 'step', 'shard', 'count', 'steps', 'stateT']);
  if (r.through !== r.shard) throw new InvalidMessageError(`round result: through is ${r.through}, expected ${r.shard}`);
  if (r.correct > r.count) throw new InvalidMessageError(`round result: ${r.correct} correct of ${r.count} samples`);
  return r;
}
