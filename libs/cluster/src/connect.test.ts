import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { deleteKeysWithPrefix } from './cleanup.js';
import { connectRedis, RedisUnavailableError, waitForRedis } from './connect.js';

const REDIS = 'redis://127.0.0.1:6379';
const redis = new Redis(REDIS);
const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const clean of cleanups.splice(0)) await clean();
});
afterAll(async () => {
  await redis.quit();
});

describe('waitForRedis', () => {
  it('returns when Redis answers, without logging', async () => {
    const lines: string[] = [];
    await expect(waitForRedis(REDIS, (l) => lines.push(l), 1)).resolves.toBeUndefined();
    expect(lines).toEqual([]);
  });
  it('gives up after the given tries with a RedisUnavailableError that names the URL without its password', async () => {
    const lines: string[] = [];
    const error = await waitForRedis('redis://:topsecret@127.0.0.1:1', (l) => lines.push(l), 2).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RedisUnavailableError);
    expect((error as Error).message).toMatch(/^Redis at redis:\/\/:\*\*\*@127\.0\.0\.1:1 does not answer after 2 tries \(.+\)$/);
    expect(lines).toHaveLength(1); // one retry notice between the two tries
    expect(lines[0]).toMatch(/^Redis at redis:\/\/:\*\*\*@127\.0\.0\.1:1 does not answer .*\(1\/2\)$/);
    expect([...lines, (error as Error).message].join('\n')).not.toContain('topsecret');
  });
});

describe('connectRedis', () => {
  it('works as a client and sets maxRetriesPerRequest: null for BullMQ', async () => {
    const client = connectRedis(REDIS, () => undefined);
    cleanups.push(() => client.quit());
    expect(await client.ping()).toBe('PONG');
    expect(client.options.maxRetriesPerRequest).toBeNull();
  });
  it('reports an outage once, however many retries fail, and never the password', async () => {
    const lines: string[] = [];
    const client = connectRedis('redis://:topsecret@127.0.0.1:1', (l) => lines.push(l), { retryStrategy: () => 20 });
    cleanups.push(async () => client.disconnect());
    let errors = 0;
    client.on('error', () => errors++);
    await new Promise((r) => setTimeout(r, 400));
    expect(errors).toBeGreaterThan(2);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^Redis at redis:\/\/:\*\*\*@127\.0\.0\.1:1: .*; retrying with backoff$/);
    expect(lines[0]).not.toContain('topsecret');
  });
});

describe('deleteKeysWithPrefix', () => {
  it('deletes exactly the keys under the prefix, across SCAN pages', async () => {
    const prefix = `test-${randomUUID()}:`;
    const outside = `${prefix.slice(0, -1)}-outside`;
    cleanups.push(
      () => redis.del(outside),
      () => deleteKeysWithPrefix(redis, prefix),
    );
    const pipeline = redis.pipeline();
    for (let i = 0; i < 1200; i++) pipeline.set(`${prefix}${i}`, 'x');
    pipeline.set(outside, 'keep');
    await pipeline.exec();
    expect(await redis.keys(`${prefix}*`)).toHaveLength(1200);
    expect(await deleteKeysWithPrefix(redis, prefix)).toBe(1200);
    expect(await redis.keys(`${prefix}*`)).toEqual([]);
    expect(await redis.get(outside)).toBe('keep');
  });
  it('returns 0 when nothing matches', async () => {
    expect(await deleteKeysWithPrefix(redis, `test-${randomUUID()}:`)).toBe(0);
  });
});
