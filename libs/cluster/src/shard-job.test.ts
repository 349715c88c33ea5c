import { describe, expect, it } from 'vitest';
import { invalidMessage as message } from './testing/invalid-message.js';
import {
  checkShardJobSignature,
  jobShards,
  signShardJob,
  validateShardFailure,
  validateShardJob,
  validateShardResult,
  type ShardJob,
  type ShardResult,
} from './shard-job.js';
import { MessageSigner } from './signing.js';

const job: ShardJob = {
  v: 5, run: 'r1', step: 3, shard: 1, attempt: 0, dataset: 'mnist', trainSamples: 512, seed: 7, epoch: 0,
  start: 16, end: 32, cuts: [], model: 'mlp:784-16-10', shift: 0, paramsKey: 'p', resultsKey: 'r', codec: 'none', residualIn: [], residualOut: [],
}; // prettier-ignore
const result: ShardResult = {
  v: 4, run: 'r1', step: 3, shard: 1, through: 1, attempt: 0, codec: 'none', count: 16, lossSum: 30.5, correct: 9, worker: 'w', fetchMs: 1, computeMs: 2, uploadMs: 0.5,
}; // prettier-ignore
// Shards of 16, 16, 16 and 8 samples.
const ranges: Array<[number, number]> = [[0, 16], [16, 32], [32, 48], [48, 56]]; // prettier-ignore
const expected = { run: 'r1', step: 3, shard: 1, ranges };

/** The message of the InvalidMessageError that `fn` throws; fails the test if it throws nothing or another error. */

function without<T extends object>(o: T, key: keyof T): Partial<T> {
  const copy: Partial<T> = { ...o };
  delete copy[key];
  return copy;
}

describe('validateShardJob', () => {
  it('accepts a valid job', () => expect(validateShardJob(JSON.parse(JSON.stringify(job)))).toEqual(job));
  it('rejects a job without run', () => expect(message(() => validateShardJob(without(job, 'run')))).toMatch(/field run is undefined/));
  it('rejects a job without resultsKey', () =>
    expect(message(() => validateShardJob(without(job, 'resultsKey')))).toMatch(/field resultsKey/));
  it.each([
    ['an empty run', { run: '' }, /field run is ""/],
    ['a negative step', { step: -1 }, /field step is -1/],
    ['a fractional shard', { shard: 1.5 }, /field shard is 1.5/],
    ['version 1 (a coordinator of an older gradq)', { v: 1 }, /field v is 1/],
    ['version 2 (no shift field: an older coordinator)', { v: 2 }, /field v is 2/],
    ['a step given as text', { step: '3' }, /field step is "3"/],
    ['a NaN seed', { seed: Number.NaN }, /field seed is null/],
    ['an unsafe integer epoch', { epoch: 2 ** 53 }, /field epoch is 9007199254740992/],
    ['a shift above 8 pixels', { shift: 9 }, /field shift is 9/],
    ['a model given as a number', { model: 784 }, /field model is 784/],
    ['end before start', { start: 40, end: 32 }, /range \[40, 32\) is empty/],
    ['an empty range', { start: 40, end: 40 }, /range \[40, 40\) is empty/],
    ['end past the samples', { end: 513 }, /range \[16, 513\) is not within 512 samples/],
    ['version 3 (one shard a job, no cuts: an older coordinator)', { v: 3 }, /field v is 3/],
    ['version 4 (no codec: a coordinator before --compress)', { v: 4 }, /field v is 4/],
    ['an unknown codec', { codec: 'int4' }, /field codec is "int4"/],
    ['int8 without residual keys', { codec: 'int8' }, /codec int8 with 1 shards needs 1 residual keys in and out, got 0 and 0/],
    ['int8 with an empty out key', { codec: 'int8', residualIn: [''], residualOut: [''] }, /needs 1 residual keys/],
    ['residual keys for none', { residualIn: [''], residualOut: ['k'] }, /codec none with 1 shards needs 0 residual keys/],
    ['cuts that are not a list', { cuts: 20 }, /field cuts is 20/],
    ['a fractional cut', { cuts: [20.5] }, /field cuts is \[20.5\]/],
    ['cuts that decrease', { cuts: [24, 20] }, /cuts \[24,20\] do not increase within \[16, 32\]/],
    ['a cut before start', { cuts: [8] }, /cuts \[8\] do not increase within \[16, 32\]/],
    ['a cut past end', { cuts: [33] }, /cuts \[33\] do not increase within \[16, 32\]/],
    ['more than 1024 shards', { cuts: new Array(1024).fill(20) }, /field cuts is \[20,20/],
  ])('rejects %s, naming the field', (_n, patch, pattern) =>
    expect(message(() => validateShardJob({ ...job, ...patch }))).toMatch(pattern),
  );
  it.each([
    ['text', 'job'],
    ['null', null],
    ['an array', [job]],
  ])('rejects %s', (_n, data) => expect(message(() => validateShardJob(data))).toMatch(/shard job: expected an object/));
});

describe('jobShards', () => {
  it("is the job's one shard without cuts", () => expect(jobShards(job)).toEqual([{ shard: 1, start: 16, end: 32 }]));
  it('cuts the range into consecutive shards, empty ones included', () =>
    expect(jobShards({ shard: 2, start: 10, end: 30, cuts: [15, 15, 22] })).toEqual([
      { shard: 2, start: 10, end: 15 },
      { shard: 3, start: 15, end: 15 },
      { shard: 4, start: 15, end: 22 },
      { shard: 5, start: 22, end: 30 },
    ]));
});

describe('validateShardResult', () => {
  it('accepts the result it expects', () => expect(validateShardResult(JSON.parse(JSON.stringify(result)), expected)).toEqual(result));
  it('accepts another attempt at the same shard', () => expect(validateShardResult({ ...result, attempt: 2 }, expected).attempt).toBe(2));
  it('accepts a result for shards 0..k, with their summed count', () => {
    const prefix = { ...result, shard: 0, through: 2, count: 48, correct: 40 };
    expect(validateShardResult(prefix, { ...expected, shard: 0 })).toEqual(prefix);
  });
  it.each([
    ['shards 1..2: only a prefix of the step may be summed', { through: 2, count: 32 }, 1, /covers shards 1..2/],
    ['shards 0..4 of 4', { shard: 0, through: 4, count: 56 }, 0, /covers shards 0..4/],
    ['a through before the shard', { through: 0 }, 1, /covers shards 1..0/],
    ['shards 0..1 with the count of one shard', { shard: 0, through: 1, count: 16 }, 0, /count is 16, expected 32/],
    ['no through (version 2)', { v: 2, through: undefined }, 1, /field v is 2/],
  ])('rejects a result for %s', (_n, patch, shard, pattern) =>
    expect(message(() => validateShardResult({ ...result, ...patch }, { ...expected, shard }))).toMatch(pattern),
  );
  it('rejects a result without lossSum', () =>
    expect(message(() => validateShardResult(without(result, 'lossSum'), expected))).toMatch(/field lossSum is undefined/));
  it.each([
    ['another run', { run: 'r2' }, /run is "r2", expected "r1"/],
    ['another step', { step: 4 }, /step is 4, expected 3/],
    ['another shard', { shard: 0 }, /shard is 0, expected 1/],
    ['another sample count', { count: 15 }, /count is 15, expected 16/],
    ['a NaN loss', { lossSum: Number.NaN }, /field lossSum is null/],
    ['an infinite loss', { lossSum: Number.POSITIVE_INFINITY }, /field lossSum is null/],
    ['a loss given as text', { lossSum: '30.5' }, /field lossSum is "30.5"/],
    ['a negative correct count', { correct: -1 }, /field correct is -1/],
    ['more correct than samples', { correct: 17 }, /17 correct of 16 samples/],
    ['a negative time', { computeMs: -1 }, /field computeMs is -1/],
    ['version 1', { v: 1 }, /field v is 1/],
  ])('rejects %s', (_n, patch, pattern) => expect(message(() => validateShardResult({ ...result, ...patch }, expected))).toMatch(pattern));
});

describe('validateShardFailure', () => {
  const failure = { v: 2, run: 'r1', step: 3, shard: 1, attempt: 0, worker: 'w', error: 'θ missing' };
  it('accepts a failure report', () => expect(validateShardFailure(failure)).toEqual(failure));
  it.each([
    ['without error', { error: undefined }, /field error is undefined/],
    ['with a negative shard', { shard: -1 }, /field shard is -1/],
    ['without worker', { worker: '' }, /field worker is ""/],
  ])('rejects a report %s', (_n, patch, pattern) => expect(message(() => validateShardFailure({ ...failure, ...patch }))).toMatch(pattern));
});

describe('signed shard jobs', () => {
  const signer = new MessageSigner(Buffer.from('the run’s shared secret, 32 bytes'));
  const signed = signShardJob(job, signer);

  it('carry the hex HMAC of their other fields in sig, and survive JSON (BullMQ’s job data)', () => {
    expect(signed).toEqual({ ...job, sig: expect.stringMatching(/^[0-9a-f]{64}$/) });
    const values = [5, 'r1', 3, 1, 0, 'mnist', 512, 7, 0, 16, 32, [], 'mlp:784-16-10', 0, 'p', 'r', 'none', [], []];
    expect(signer.verify('shard-job', Buffer.from(signed.sig ?? '', 'hex'), [JSON.stringify(values)])).toBe(true);
    const received = validateShardJob(JSON.parse(JSON.stringify(signed)));
    expect(() => checkShardJobSignature(received, signer)).not.toThrow();
  });
  it('are accepted unsigned by a worker without a secret, as before', () => {
    expect(() => checkShardJobSignature(job, undefined)).not.toThrow();
  });
  it.each([
    ['an unsigned job', job, /shard job is not signed/],
    ['a job signed with another secret', signShardJob(job, new MessageSigner(Buffer.from('y'.repeat(16)))), /bad signature/],
    ['a changed range', { ...signed, start: 0 }, /bad signature/],
    ['a changed θ key', { ...signed, paramsKey: 'q' }, /bad signature/],
    ['a changed results list', { ...signed, resultsKey: 'elsewhere' }, /bad signature/],
    ['a changed codec', { ...signed, codec: 'fp16' as const }, /bad signature/],
    ['a changed residual key', { ...signed, codec: 'int8' as const, residualIn: ['x'], residualOut: ['y'] }, /bad signature/],
    ['a changed attempt', { ...signed, attempt: 1 }, /bad signature/],
    ['a signature in capitals', { ...signed, sig: signed.sig?.toUpperCase() }, /bad signature/],
    ['a signature cut short', { ...signed, sig: signed.sig?.slice(2) }, /bad signature/],
    ['a signature of another type', { ...signed, sig: 7 as unknown as string }, /bad signature/],
  ])('refuse %s when the worker has the secret', (_n, data, pattern) =>
    expect(message(() => checkShardJobSignature(data, signer))).toMatch(pattern),
  );
  it('are refused by a worker without a secret, which says so', () =>
    expect(message(() => checkShardJobSignature(signed, undefined))).toMatch(/signed, but this worker has no secret/));
});
