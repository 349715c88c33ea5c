import { RedisConnectionError, RedisReplyError } from '@gradq/cluster';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { TensorRetry } from './tensor-retry.js';

const lost = (why: string) => new RedisConnectionError(`Redis at redis://x: connection lost (${why})`);

/** A command that fails with `failures` in order, then resolves to `value`; `calls` says when it was sent. */
function command<T>(value: T, failures: Error[]) {
  const calls: number[] = [];
  const run = async (): Promise<T> => {
    calls.push(Date.now());
    const e = failures.shift();
    if (e) throw e;
    return value;
  };
  return { run, calls };
}

describe('TensorRetry.once', () => {
  it('logs an outage once, whichever commands meet it, and once more when a command goes through', async () => {
    const log: string[] = [];
    const retry = new TensorRetry((l) => log.push(l));
    await expect(retry.once('writing θ', command(null, [lost('ECONNRESET')]).run)).resolves.toBeUndefined();
    await expect(retry.once('waiting for results', command(null, [lost('ECONNREFUSED')]).run)).resolves.toBeUndefined();
    const popped = new Uint8Array([1, 2]);
    await expect(retry.once('waiting for results', command(popped, []).run)).resolves.toBe(popped);
    await expect(retry.once('waiting for results', command(null, []).run)).resolves.toBeNull();
    await expect(retry.once('writing θ', command(null, [lost('EPIPE')]).run)).resolves.toBeUndefined();
    expect(log).toEqual([
      'writing θ failed (Redis at redis://x: connection lost (ECONNRESET)); retrying',
      'waiting for results: Redis reachable again',
      'writing θ failed (Redis at redis://x: connection lost (EPIPE)); retrying',
    ]);
  });

  it('throws an error reply, and any other error: sending the command again would not help', async () => {
    const log: string[] = [];
    const retry = new TensorRetry((l) => log.push(l));
    const reply = new RedisReplyError('Redis SET: OOM command not allowed when used memory > maxmemory');
    await expect(retry.once('writing θ', command(null, [reply]).run)).rejects.toBe(reply);
    await expect(retry.once('writing θ', command(null, [new RangeError('bad timeout')]).run)).rejects.toThrow('bad timeout');
    expect(log).toEqual([]);
  });
});

describe('TensorRetry.untilDone', () => {
  afterEach(() => void vi.useRealTimers());

  it('sends the command again after 250 ms, then twice as long each time up to 5 s, until it goes through', async () => {
    vi.useFakeTimers();
    const log: string[] = [];
    const retry = new TensorRetry((l) => log.push(l));
    const c = command(
      'OK',
      Array.from({ length: 7 }, () => lost('ECONNREFUSED')),
    );
    const start = Date.now();
    const done = retry.untilDone('step 2: writing θ', c.run);
    await vi.advanceTimersByTimeAsync(60_000);
    await expect(done).resolves.toBeUndefined();
    expect(c.calls.map((t) => t - start)).toEqual([0, 250, 750, 1750, 3750, 7750, 12750, 17750]);
    expect(log).toEqual([
      'step 2: writing θ failed (Redis at redis://x: connection lost (ECONNREFUSED)); retrying',
      'step 2: writing θ: Redis reachable again',
    ]);
  });

  it('stops at an error reply', async () => {
    const retry = new TensorRetry(() => undefined);
    const c = command(undefined, [lost('ECONNRESET'), new RedisReplyError('Redis SET: READONLY')]);
    await expect(retry.untilDone('writing θ', c.run)).rejects.toThrow('Redis SET: READONLY');
    expect(c.calls).toHaveLength(2);
  });
});
