import { MAX_SHIFT } from '@gradq/data';
import { InvalidMessageError } from './invalid-message-error.js';
import type { MessageSigner } from './signing.js';

/**
 * The job descriptor of one shard (BullMQ job data, JSON): everything a worker needs to compute the shard's
 * gradient sum, and no tensor. The samples are positions [start, end) of epochOrder(seed, epoch, trainSamples)
 * over the first `trainSamples` training samples of `dataset` (libs/data's contract).
 */
export interface ShardJob {
  v: 3; // job version: 3 = with shift (2 had no augmentation: an older worker must refuse these jobs, not ignore shift)
  run: string;
  step: number; // global step; also the parameter version the gradient must be computed at
  shard: number;
  attempt: number; // 0, then 1, 2… when the coordinator asks for a recomputation
  dataset: string;
  trainSamples: number;
  seed: number;
  epoch: number;
  start: number;
  end: number;
  model: string; // model spec, e.g. mlp:784-128-10
  shift: number; // data augmentation: largest image shift in pixels (0: none; libs/data's sampleShift)
  paramsKey: string;
  resultsKey: string; // the run's results list: the worker RPUSHes its result message there
  /**
   * With a shared secret: the hex HMAC-SHA256 of the other fields (see signShardJob). Absent without one, so that
   * an unsigned run's jobs are what they always were.
   */
  sig?: string;
}

/**
 * What a worker reports for a shard: the header of its result message (with the gradient sum after it), and
 * the job's BullMQ return value.
 */
export interface ShardResult {
  v: 2;
  run: string;
  step: number;
  shard: number;
  attempt: number;
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

type Check = (v: unknown) => boolean;
const int: Check = (v) => Number.isSafeInteger(v) && (v as number) >= 0;
const num: Check = (v) => typeof v === 'number' && Number.isFinite(v);
const ms: Check = (v) => num(v) && (v as number) >= 0;
const str: Check = (v) => typeof v === 'string' && v.length > 0 && v.length <= 256;

const v2: Check = (v) => v === 2;
const v3: Check = (v) => v === 3;

const JOB_FIELDS: Record<Exclude<keyof ShardJob, 'sig'>, Check> = {
  v: v3, run: str, step: int, shard: int, attempt: int, dataset: str, trainSamples: int, seed: int,
  epoch: int, start: int, end: int, model: str, shift: (v) => int(v) && (v as number) <= MAX_SHIFT, paramsKey: str, resultsKey: str,
}; // prettier-ignore

const RESULT_FIELDS: Record<keyof ShardResult, Check> = {
  v: v2, run: str, step: int, shard: int, attempt: int, count: int, lossSum: num, correct: int,
  worker: str, fetchMs: ms, computeMs: ms, uploadMs: ms,
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
  return job;
}

/** The fields a job's signature covers: every field but `sig`, in the order of JOB_FIELDS. */
const SIGNED_JOB_FIELDS = Object.keys(JOB_FIELDS) as Array<keyof typeof JOB_FIELDS>;

/** What a job's signature is computed over: its fields' values, in a fixed order, as JSON. */
const signedJobText = (job: ShardJob): string => JSON.stringify(SIGNED_JOB_FIELDS.map((key) => job[key]));

/** `job` with its signature (`sig`). */
export function signShardJob(job: ShardJob, signer: MessageSigner): ShardJob {
  return { ...job, sig: signer.sign('shard-job', [signedJobText(job)]).toString('hex') };
}

/**
 * Checks a job's signature against the worker's secret (`signer`), or that there is none when the worker has no
 * secret; InvalidMessageError otherwise. Jobs are validated (validateShardJob) first.
 */
export function checkShardJobSignature(job: ShardJob, signer: MessageSigner | undefined): void {
  const { sig } = job;
  if (signer === undefined) {
    if (sig !== undefined) throw new InvalidMessageError('shard job is signed, but this worker has no secret (give it the run’s secret)');
    return;
  }
  if (sig === undefined) {
    throw new InvalidMessageError('shard job is not signed (from a coordinator without the secret, or forged); job refused');
  }
  const signature = typeof sig === 'string' && /^[0-9a-f]{64}$/.test(sig) ? Buffer.from(sig, 'hex') : Buffer.alloc(0);
  if (!signer.verify('shard-job', signature, [signedJobText(job)])) {
    throw new InvalidMessageError('shard job has a bad signature (made with another secret, or changed since); job refused');
  }
}

/** A worker's return value as a ShardResult for the expected (run, step, shard, attempt) and sample count. */
export function validateShardResult(data: unknown, expected: Pick<ShardResult, 'run' | 'step' | 'shard' | 'count'>): ShardResult {
  const r = checkFields<ShardResult>('shard result', data, RESULT_FIELDS);
  for (const key of ['run', 'step', 'shard', 'count'] as const) {
    if (r[key] !== expected[key]) {
      throw new InvalidMessageError(`shard result: ${key} is ${JSON.stringify(r[key])}, expected ${JSON.stringify(expected[key])}`);
    }
  }
  if (r.correct > r.count) throw new InvalidMessageError(`shard result: ${r.correct} correct of ${r.count} samples`);
  return r;
}

/** A failure report as a ShardFailure, or InvalidMessageError naming the first bad field. */
export function validateShardFailure(data: unknown): ShardFailure {
  return checkFields<ShardFailure>('shard failure', data, FAILURE_FIELDS);
}

function checkFields<T>(what: string, data: unknown, fields: Record<string, Check>): T {
  if (typeof data !== 'object' || data === null || Array.isArray(data)) {
    throw new InvalidMessageError(`${what}: expected an object, got ${JSON.stringify(data)?.slice(0, 80)}`);
  }
  const record = data as Record<string, unknown>;
  for (const [key, check] of Object.entries(fields)) {
    if (!check(record[key])) throw new InvalidMessageError(`${what}: field ${key} is ${JSON.stringify(record[key])?.slice(0, 80)}`);
  }
  return record as T;
}
