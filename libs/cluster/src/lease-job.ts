import { MAX_SHIFT } from '@gradq/data';
import { GRADIENT_CODECS, keepsResidual } from '@gradq/nn';
import { InvalidMessageError } from './invalid-message-error.js';
import { JobSignature } from './job-signature.js';
import { checkFields, int, pos, str, type Check } from './message-fields.js';
import { checkReplicaStates, OPTIMIZER_FIELDS, stateKeyList, stateTList, type JobOptimizer, type RoundJob } from './round-job.js';
import type { ShardJob } from './shard-job.js';
import type { MessageSigner } from './signing.js';

/** BullMQ's job name of a step lease (a one-step job is named 'shard', a local SGD round's 'round'). */
export const LEASE_JOB_NAME = 'lease';

/** Most steps one lease may hold. */
export const MAX_LEASE_STEPS = 4096;

/**
 * A step lease (BullMQ job data, JSON): shards `shard`..`shard + count - 1` of the synchronous steps
 * [step, step + steps) of one epoch, held by the worker that takes it. Instead of a job per step, the worker waits
 * for each step's announcement on the run's clock (a Redis stream the coordinator adds an entry to once θ_t is
 * written: run-keys.ts), fetches θ_t (`paramsPrefix` + t) and computes the step's shards of the lease exactly as
 * it computes a one-step job of them (leaseStepJob), pushing the same result messages. So a step costs the
 * coordinator one write (θ and the announcement) and no BullMQ round trip.
 *
 * The worker recomputes each step's shard ranges from trainSamples, batch and shards (libs/data's planStep); the
 * coordinator checks every result against its own plan, as for any job. A worker that takes a lease late (another
 * holder died) starts at the last step announced: the one the coordinator waits for. A holder that has no step to
 * compute for a while hands the lease back (a LeaseRelease on the results list, then the job completes), so that a
 * lease never holds a worker the run needs elsewhere; the coordinator then makes a new set of leases for the next step
 * (a step announced for a new set ends the leases of the old one). Leases are for codecs without error feedback only (an int8
 * shard's residual key is chosen by the coordinator step by step).
 *
 * A stepping lease holds every shard: its holder fetches θ and the optimizer's state once, at the lease's first
 * step, and from then on steps θ itself with the run's optimizer (the fields of a ReplicaSpec), as the
 * coordinator does (the job's JobOptimizer fields), computing each step without waiting for its θ; its results carry the digest of the θ they were
 * computed from, which the coordinator checks against its own (ShardResult.params).
 *
 * A round lease (`rounds` = H > 0, `--sync local:H`) holds replicas `shard`..`shard + count - 1` of the local SGD
 * rounds that start in [step, step + steps): rounds of H steps from the epoch's start (the last one of an epoch
 * shorter, libs/train roundEnd), each announced on the clock by its first step once θ of the round is written. Its
 * holder computes each round of its replicas as a round job of them (leaseRoundJob) and keeps each replica's new
 * inner optimizer state for its next round, so that the states travel down once a lease (from `stateKeys`, with
 * their counters `stateTs`, at its first round) instead of once a round; the coordinator adopts the same states from
 * the results it accepts, and writes a replica's state for a round only when a job of another worker needs it.
 */
export interface LeaseJob extends JobOptimizer {
  v: 3; // 3: with the round fields (2: without them, 1: without the stepping fields either)
  kind: 'lease';
  run: string;
  step: number; // the lease's first global step
  steps: number; // steps held, all in the epoch of `step`
  shard: number; // the lease's first shard
  count: number; // shards held, from `shard` on
  shards: number; // K
  attempt: number; // the attempt its results carry
  /**
   * Its lease set: the leases made together for the same steps, one per worker group. A step announced for another
   * set ends this lease (the coordinator regrouped: a worker joined or left, a lease was handed back or lost).
   */
  set: number;
  dataset: string;
  trainSamples: number;
  seed: number;
  batch: number;
  model: string;
  shift: number;
  codec: ShardJob['codec'];
  /** θ_t is at paramsPrefix + t. */
  paramsPrefix: string;
  /** The run's clock: a stream of entries announcing steps and ending sets (clock-entry.ts). */
  clockKey: string;
  resultsKey: string;
  /**
   * A stepping lease: it holds all `shards` shards, and its holder applies the run's optimizer to each step's sum
   * itself, as the coordinator does, instead of waiting for θ of the next step (LeaseHolder). The optimizer's
   * state at the lease's first step: `stateBuffers` buffers one after the other at `stateKey` ('' when it keeps
   * none), its step counter `stateT`.
   */
  stepping: boolean;
  stateKey: string;
  stateBuffers: number;
  stateT: number;
  /**
   * A round lease's H (0: a lease of synchronous steps), and its replicas' inner optimizer states at its first
   * round: their keys ('' each when the optimizer keeps none) and step counters, one per replica held.
   */
  rounds: number;
  stateKeys: string[];
  stateTs: number[];
  sig?: string;
}

/**
 * What a lease holder pushes onto the results list when it hands its lease back: from step `step` on, it computes
 * nothing more of lease `lease` (the BullMQ job id), which the coordinator then leases again (or recomputes).
 */
export interface LeaseRelease {
  v: 1;
  kind: 'release';
  run: string;
  step: number;
  lease: string;
  worker: string;
}

const JOB_FIELDS: Record<Exclude<keyof LeaseJob, 'sig'>, Check> = {
  v: (v) => v === 3, kind: (v) => v === 'lease', run: str, step: int, steps: (v) => pos(v) && (v as number) <= MAX_LEASE_STEPS,
  shard: int, count: pos, shards: pos, attempt: int, set: int, dataset: str, trainSamples: pos, seed: int, batch: pos, model: str,
  shift: (v) => int(v) && (v as number) <= MAX_SHIFT, codec: (v) => (GRADIENT_CODECS as readonly unknown[]).includes(v),
  paramsPrefix: str, clockKey: str, resultsKey: str, stepping: (v) => typeof v === 'boolean',
  stateKey: (v) => typeof v === 'string' && v.length <= 256, stateBuffers: int, stateT: int, ...OPTIMIZER_FIELDS,
  rounds: int, stateKeys: stateKeyList, stateTs: stateTList,
}; // prettier-ignore

const RELEASE_FIELDS: Record<keyof LeaseRelease, Check> = {
  v: (v) => v === 1, kind: (v) => v === 'release', run: str, step: int, lease: str, worker: str,
}; // prettier-ignore

/** A job's data as a LeaseJob, or InvalidMessageError naming the first bad field. */
export function validateLeaseJob(data: unknown): LeaseJob {
  const job = checkFields<LeaseJob>('lease job', data, JOB_FIELDS);
  if (job.shard + job.count > job.shards) {
    throw new InvalidMessageError(`lease job: shards ${job.shard}..${job.shard + job.count - 1} of ${job.shards}`);
  }
  if (job.shards > job.batch) throw new InvalidMessageError(`lease job: ${job.shards} shards of a batch of ${job.batch}`);
  if (keepsResidual(job.codec)) {
    throw new InvalidMessageError(`lease job: codec ${job.codec} keeps residuals, which are leased step by step (one-step jobs)`);
  }
  if (job.rounds > 0) {
    if (job.stepping) throw new InvalidMessageError(`lease job: a round lease (rounds ${job.rounds}) does not step θ itself`);
    if (job.codec !== 'none') throw new InvalidMessageError(`lease job: a round lease sends its results uncompressed, not as ${job.codec}`);
    checkReplicaStates('lease job', job, job.count);
  } else if (job.stateKeys.length > 0 || job.stateTs.length > 0) {
    throw new InvalidMessageError(`lease job: replica state keys in a lease of synchronous steps (rounds 0)`);
  }
  if (job.stepping && job.codec !== 'none') {
    throw new InvalidMessageError(`lease job: a stepping lease sends its sums uncompressed, not as ${job.codec}`);
  }
  if (job.stepping && (job.shard !== 0 || job.count !== job.shards)) {
    throw new InvalidMessageError(
      `lease job: a stepping lease holds all ${job.shards} shards, not ${job.shard}..${job.shard + job.count - 1}`,
    );
  }
  if (job.stepping && (job.stateKey === '') !== (job.stateBuffers === 0)) {
    throw new InvalidMessageError(`lease job: state key ${JSON.stringify(job.stateKey)} for ${job.stateBuffers} state buffers`);
  }
  return job;
}

/** A release message's header as a LeaseRelease, or InvalidMessageError naming the first bad field. */
export function validateLeaseRelease(data: unknown): LeaseRelease {
  return checkFields<LeaseRelease>('lease release', data, RELEASE_FIELDS);
}

/**
 * The one-step job of a lease's shards at step `step`, whose shard ranges are `ranges` (the step's plan): what the
 * holder computes, as a worker computes a job of those shards (unsigned: the lease's signature was checked).
 */
export function leaseStepJob(job: LeaseJob, step: number, epoch: number, ranges: ReadonlyArray<readonly [number, number]>): ShardJob {
  const mine = ranges.slice(job.shard, job.shard + job.count);
  return {
    v: 5, run: job.run, step, shard: job.shard, attempt: job.attempt, dataset: job.dataset, trainSamples: job.trainSamples,
    seed: job.seed, epoch, start: mine[0][0], end: mine[mine.length - 1][1], cuts: mine.slice(1).map(([cut]) => cut),
    model: job.model, shift: job.shift, paramsKey: `${job.paramsPrefix}${step}`, resultsKey: job.resultsKey, codec: job.codec,
    residualIn: [], residualOut: [],
  }; // prettier-ignore
}

/**
 * The round job of a round lease's replicas for the round [step, step + steps) (`states`: their keys and counters
 * at its start, the lease's own at its first round): what the holder computes, as a worker computes a round job of
 * those replicas (unsigned: the lease's signature was checked).
 */
export function leaseRoundJob(job: LeaseJob, step: number, steps: number, states: Pick<RoundJob, 'stateKeys' | 'stateTs'>): RoundJob {
  const { optimizer, lr, schedule, warmup, momentum, weightDecay, epochs } = job;
  return {
    v: 2, kind: 'round', run: job.run, step, steps, shard: job.shard, replicas: job.count, shards: job.shards,
    attempt: job.attempt, dataset: job.dataset, trainSamples: job.trainSamples, seed: job.seed, batch: job.batch,
    model: job.model, shift: job.shift, optimizer, lr, schedule, warmup, momentum, weightDecay, epochs,
    paramsKey: `${job.paramsPrefix}${step}`, stateKeys: states.stateKeys, stateBuffers: job.stateBuffers,
    stateTs: states.stateTs, resultsKey: job.resultsKey,
  }; // prettier-ignore
}

/** A lease job's signature: over every field but `sig`, in the order of JOB_FIELDS. */
const SIGNATURE = new JobSignature<LeaseJob>('lease-job', Object.keys(JOB_FIELDS) as Array<keyof typeof JOB_FIELDS>);

/** `job` with its signature (`sig`, kind 'lease-job'). */
export function signLeaseJob(job: LeaseJob, signer: MessageSigner): LeaseJob {
  return SIGNATURE.sign(job, signer);
}

/** As checkShardJobSignature, for a (validated) lease job. */
export function checkLeaseJobSignature(job: LeaseJob, signer: MessageSigner | undefined): void {
  SIGNATURE.check(job, signer);
}
