import { InvalidMessageError, RedisConnectionError, RedisReplyError } from '@gradq/cluster';
import { DataError } from '@gradq/data';
import { describe, expect, it } from 'vitest';
import { FailureStreak, isWorkersOwnFailure } from './failure-streak.js';

describe('isWorkersOwnFailure', () => {
  it('blames the worker for its data, memory and bugs, not for a bad job or Redis', () => {
    expect(isWorkersOwnFailure(new DataError('/data/mnist/train-images-idx3-ubyte.gz: not found'))).toBe(true);
    expect(isWorkersOwnFailure(new RangeError('WebAssembly.Memory(): could not allocate memory'))).toBe(true);
    expect(isWorkersOwnFailure(new InvalidMessageError('params:5: missing'))).toBe(false);
    expect(isWorkersOwnFailure(new RedisConnectionError('connection lost'))).toBe(false);
    expect(isWorkersOwnFailure(new RedisReplyError('WRONGTYPE'))).toBe(false);
  });
});

describe('FailureStreak', () => {
  const own = new DataError('no mnist here');

  it('pauses 0.5, 1, 2, 4 s after the worker’s own failures in a row, and stops at the fifth', () => {
    const streak = new FailureStreak();
    expect([1, 2, 3, 4, 5].map(() => streak.failed(own))).toEqual([500, 1000, 2000, 4000, 'stop']);
    expect(streak.stopError('w7').message).toBe(
      'worker w7: 5 jobs in a row failed here (the last: no mnist here); stopping: fix the cause (its data folder, its memory) and start it again',
    );
  });

  it('starts over after a job computed; failures of bad jobs neither count nor end the streak', () => {
    const streak = new FailureStreak(3, 10);
    expect(streak.failed(own)).toBe(10);
    expect(streak.failed(own)).toBe(20);
    streak.succeeded();
    expect(streak.failed(own)).toBe(10);
    for (let i = 0; i < 100; i++) expect(streak.failed(new InvalidMessageError('shard job: field v is 3'))).toBe(0);
    expect(streak.failed(own)).toBe(20);
    expect(streak.failed(own)).toBe('stop');
  });
});
