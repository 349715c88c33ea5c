import { MAX_SHIFT } from '@gradq/data';
import { GRADIENT_CODECS, keepsResidual, type GradientCodec } from '@gradq/nn';
import { InvalidMessageError } from './invalid-message-error.js';
import { JobSignature } from './job-signature.js';
import { checkExpected, checkFields, int, ms, num, str, type Check } from './message-fields.js';
import type { MessageSigner } from './signing.js';

/** Most shards one job may carry. */
export const MAX_JOB_SHARDS = 1024;

/**
 * The job descriptor of one or more consecutive shards of a step (BullMQ job data, JSON): everything a worker
 * needs to compute each shard's gradient sum, and no tensor. The samples are positions [start, end) of
 * epochOrder(seed, epoch, trainSamples) over the first `trainSamples` training samples of `dataset` (libs/data's
 * contract), cut at `cuts` into the job's shards: shard `shard + i` covers [b[i], b[i+1]) of
 * b = [start, ...cuts, end] (one shard when `cuts` is empty). A worker answers each non-empty shard with a result
 * message of its own, so that the coordinator still adds shard sums one by one in shard order.
 */
export interface ShardJob {
  // job version: 5 = with codec and residual keys (--compress); 4 with cuts (several shards per job); 3 had one
  // shard a job, 2 no augmentation: an older worker must refuse these jobs, not compute a part of them
  v: 5;
  run: string;
  step: number; // global step; also the parameter version the gradient must be computed at
  shard: number; // the job's first shard
  attempt: number; // 0, then 1, 2… when the coordinator asks for a recomputation (of one shard)
  dataset: string;
  trainSamples: number;
  seed: number;
  epoch: number;
  start: number;
  end: number;
  /** Where the job's range is cut into shards (increasing or equal, within [start, end]); empty for one shard. */
  cuts: number[];
  model: string; // model spec, e.g. mlp:784-128-10
  shift: number; // data augmentation: largest image shift in pixels (0: none; libs/data's sampleShift)
  paramsKey: string;
  resultsKey: string; // the run's results list: the worker RPUSHes its result message there
  /** How the worker encodes each shard's gradient sum (--compress; libs/train's compressShardGradient). */
  codec: GradientCodec;
  /**
   * Error feedback (keepsResidual: codec int8), one entry per shard of the job: the key of the shard's residual to read ('' for
   * none yet: zeros) and the key to write its new one to (residual-store.ts). Both empty lists for other codecs.
   */
  residualIn: string[];
  residualOut: string[];
  /**
   * With a shared secret: the hex HMAC-SHA256 of the other fields (see signShardJob). Absent without one, so that
   * an unsigned run's jobs are what they always were.
   */
  sig?: string;
}

/**
 * What a worker reports for a shard: the header of its result message (with the gradient sum after it), and
 * (in a list, one per message) the job's BullMQ return value.
 *
 * A result normally covers one shard (`through` = `shard`). A job that starts at shard 0 answers with one
 * message for shards 0..through instead: their gradient sums added in shard order into a zeroed sum, as the
 * coordinator would add them (the same bits: see ShardProcessor), with count, lossSum and correct summed likewise.
 * Only a prefix of the step can be summed ahead: a later run of shards would change the order of the additions.
 */
export interface ShardResult {
  v: 4; // 4 = with codec; 3 with through (2: one shard a message)
  run: string;
  step: number;
  shard: number;
  through: number; // the last shard covered (shard itself, or a later one when shard is 0)
  attempt: number;
  /** How the gradient after the header is encoded (the run's --compress). */
  codec: GradientCodec;
  count: number;
  lossSum: number;
  correct: number;
  worker: string;
  /**
   * Milliseconds: fetching θ (0 when cached), forward+backward, and pushing this worker's previous result (a
   * message cannot carry its own upload time; averaged over a run it is the upload time).
   */
  fetchMs: number;
  computeMs: number;
  uploadMs: number;
  /**
   * From a stepping lease's holder, which computes from a θ of its own (lease-job.ts): paramsDigest of that θ, for
   * the coordinator to check against the step's (a result from any other θ is rejected). Absent otherwise.
   */
  params?: string;
}

/** What a worker reports when it could not compute a shard (the header of a result message without gradient). */
export interface ShardFailure {
  v: 2;
  run: string;
  step: number;
  shard: number;
  attempt: number;
  worker: string;
  error: string;
}

const v2: Check = (v) => v === 2;
const v5: Check = (v) => v === 5;
const codec: Check = (v) => (GRADIENT_CODECS as readonly unknown[]).includes(v);
const keys: Check = (v) => Array.isArray(v) && v.length <= MAX_JOB_SHARDS && v.every((k) => k === '' || str(k));
const cuts: Check = (v) => Array.isArray(v) && v.length < MAX_JOB_SHARDS && v.every(int);

const JOB_FIELDS: Record<Exclude<keyof ShardJob, 'sig'>, Check> = {
  v: v5, run: str, step: int, shard: int, attempt: int, dataset: str, trainSamples: int, seed: int,
  epoch: int, start: int, end: int, cuts, model: str, shift: (v) => int(v) && (v as number) <= MAX_SHIFT, paramsKey: str, resultsKey: str,
  codec, residualIn: keys, residualOut: keys,
}; // prettier-ignore

const RESULT_FIELDS: Record<keyof ShardResult, Check> = {
  v: (v) => v === 4, run: str, step: int, shard: int, through: int, attempt: int, codec, count: int, lossSum: num, correct: int,
  worker: str, fetchMs: ms, computeMs: ms, uploadMs: ms, params: (v) => v === undefined || (typeof v === 'string' && /^[0-9a-f]{16}$/.test(v)),
}; // prettier-ignore

const FAILURE_FIELDS: Record<keyof ShardFailure, Check> = {
  v: v2, run: str, step: int, shard: int, attempt: int, worker: str, error: (v) => typeof v === 'string',
}; // prettier-ignore

/** A job's data as a ShardJob, or InvalidMessageError naming the first bad field. */
export function validateShardJob(data: unknown): ShardJob {
  const job = checkFields<ShardJob>('shard job', data, JOB_FIELDS);
  if (job.end <= job.start) throw new InvalidMessageError(`shard job: range [${job.start}, ${job.end}) is empty`);
  if (job.end > job.trainSamples) {
    throw new InvalidMessageError(`shard job: range [${job.start}, ${job.end}) is not within ${job.trainSamples} samples`);
  }
  let previous = job.start;
  for (const cut of job.cuts) {
    if (cut < previous || cut > job.end) {
      throw new InvalidMessageError(
        `shard job: cuts ${JSON.stringify(job.cuts).slice(0, 80)} do not increase within [${job.start}, ${job.end}]`,
      );
    }
    previous = cut;
  }
  const residuals = keepsResidual(job.codec) ? job.cuts.length + 1 : 0;
  if (job.residualIn.length !== residuals || job.residualOut.length !== residuals || job.residualOut.includes('')) {
    throw new InvalidMessageError(
      `shard job: codec ${job.codec} with ${job.cuts.length + 1} shards needs ${residuals} residual keys in and out, got ${job.residualIn.length} and ${job.residualOut.length}`,
    );
  }
  return job;
}

/** The shards of a (validated) job: index and [start, end) positions, empty shards included. */
export function jobShards(job: Pick<ShardJob, 'shard' | 'start' | 'end' | 'cuts'>): Array<{ shard: number; start: number; end: number }> {
  const bounds = [job.start, ...job.cuts, job.end];
  const shards = [];
  for (let i = 0; i + 1 < bounds.length; i++) shards.push({ shard: job.shard + i, start: bounds[i], end: bounds[i + 1] });
  return shards;
}

/** A shard job's signature: over every field but `sig`, in the order of JOB_FIELDS. */
const SIGNATURE = new JobSignature<ShardJob>('shard-job', Object.keys(JOB_FIELDS) as Array<keyof typeof JOB_FIELDS>);

/** `job` with its signature (`sig`). */
export function signShardJob(job: ShardJob, signer: MessageSigner): ShardJob {
  return SIGNATURE.sign(job, signer);
}

/**
 * Checks a job's signature against the worker's secret (`signer`), or that there is none when the worker has no
 * secret; InvalidMessageError otherwise. Jobs are validated (validateShardJob) first.
 */
export function checkShardJobSignature(job: ShardJob, signer: MessageSigner | undefined): void {
  SIGNATURE.check(job, signer);
}

/**
 * A worker's return value as a ShardResult for the expected (run, step, shard) of a step whose shards cover the
 * positions `ranges` (its count must be that of the shards it covers).
 */
export function validateShardResult(
  data: unknown,
  expected: Pick<ShardResult, 'run' | 'step' | 'shard'> & { ranges: ReadonlyArray<readonly [number, number]> },
): ShardResult {
  const r = checkFields<ShardResult>('shard result', data, RESULT_FIELDS);
  checkExpected('shard result', r, expected, ['run', 'step', 'shard']);
  const { shard, through } = r;
  if (through < shard || through >= expected.ranges.length || (through > shard && shard !== 0)) {
    throw new InvalidMessageError(
      `shard result: covers shards ${shard}..${through} (one shard, or 0..k for k < ${expected.ranges.length})`,
    );
  }
  const count = expected.ranges[through][1] - expected.ranges[shard][0];
  if (r.count !== count) throw new InvalidMessageError(`shard result: count is ${r.count}, expected ${count}`);
  if (r.correct > r.count) throw new InvalidMessageError(`shard result: ${r.correct} correct of ${r.count} samples`);
  return r;
}

/** A failure report as a ShardFailure, or InvalidMessageError naming the first bad field. */
export function validateShardFailure(data: unknown): ShardFailure {
  return checkFields<ShardFailure>('shard failure', data, FAILURE_FIELDS);
}
