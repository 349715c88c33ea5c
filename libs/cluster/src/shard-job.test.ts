import { describe, expect, it } from 'vitest';
import { InvalidMessageError } from './invalid-message-error.js';
import { validateShardJob, validateShardResult, type ShardJob, type ShardResult } from './shard-job.js';

const job: ShardJob = {
  v: 1, run: 'r1', step: 3, shard: 1, attempt: 0, dataset: 'mnist', trainSamples: 512, seed: 7, epoch: 0,
  start: 16, end: 32, model: 'mlp:784-16-10', paramsKey: 'p', gradKey: 'g',
}; // prettier-ignore
const result: ShardResult = {
  v: 1, run: 'r1', step: 3, shard: 1, attempt: 0, count: 16, lossSum: 30.5, correct: 9, worker: 'w', fetchMs: 1, computeMs: 2, uploadMs: 0.5,
}; // prettier-ignore
const expected = { run: 'r1', step: 3, shard: 1, count: 16 };

function message(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(InvalidMessageError);
    return (e as Error).message;
  }
  throw new Error('no error');
}

describe('validateShardJob', () => {
  it('accepts a valid job', () => expect(validateShardJob({ ...job })).toEqual(job));
  it.each([
    ['run missing', { run: undefined }, /field run is undefined/],
    ['negative step', { step: -1 }, /field step is -1/],
    ['fractional shard', { shard: 1.5 }, /field shard is 1.5/],
    ['version 2', { v: 2 }, /field v is 2/],
    ['step as text', { step: '3' }, /field step is "3"/],
    ['end before start', { start: 40, end: 32 }, /range \[40, 32\) is not within 512 samples/],
    ['end past the samples', { end: 513 }, /range \[16, 513\) is not within 512 samples/],
  ])('rejects %s', (_n, patch, pattern) => expect(message(() => validateShardJob({ ...job, ...patch }))).toMatch(pattern));
  it('rejects a non-object', () => expect(message(() => validateShardJob('job'))).toMatch(/expected an object/));
});

describe('validateShardResult', () => {
  it('accepts the result it expects', () => expect(validateShardResult({ ...result }, expected)).toEqual(result));
  it.each([
    ['another run', { run: 'r2' }, /run is "r2", expected "r1"/],
    ['another step', { step: 4 }, /step is 4, expected 3/],
    ['another shard', { shard: 0 }, /shard is 0, expected 1/],
    ['another sample count', { count: 15 }, /count is 15, expected 16/],
    ['a NaN loss', { lossSum: Number.NaN }, /field lossSum is null/],
    ['more correct than samples', { correct: 17 }, /17 correct of 16 samples/],
  ])('rejects %s', (_n, patch, pattern) => expect(message(() => validateShardResult({ ...result, ...patch }, expected))).toMatch(pattern));
});
