import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { deleteKeysWithPrefix } from './cleanup.js';
import { RedisUnavailableError, waitForRedis } from './connect.js';

const redis = new Redis('redis://127.0.0.1:6379');
afterAll(async () => {
  await redis.quit();
});

describe('waitForRedis', () => {
  it('returns when Redis answers', async () => {
    await expect(waitForRedis('redis://127.0.0.1:6379', () => undefined)).resolves.toBeUndefined();
  });
  it('gives up with a clear error and never logs the password', async () => {
    const lines: string[] = [];
    const error = await waitForRedis('redis://:topsecret@127.0.0.1:1', (l) => lines.push(l), 2).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RedisUnavailableError);
    expect((error as Error).message).toMatch(/^Redis at redis:\/\/:\*\*\*@127\.0\.0\.1:1 does not answer after 2 tries/);
    expect(lines).toHaveLength(1);
    expect([...lines, (error as Error).message].join('\n')).not.toContain('topsecret');
  });
});

describe('deleteKeysWithPrefix', () => {
  it('deletes exactly the keys under the prefix, across SCAN pages', async () => {
    const prefix = `test-${randomUUID()}:`;
    const pipeline = redis.pipeline();
    for (let i = 0; i < 1200; i++) pipeline.set(`${prefix}${i}`, 'x');
    pipeline.set(`${prefix.slice(0, -1)}-other`, 'keep');
    await pipeline.exec();
    expect(await deleteKeysWithPrefix(redis, prefix)).toBe(1200);
    expect(await redis.keys(`${prefix}*`)).toEqual([]);
    expect(await redis.get(`${prefix.slice(0, -1)}-other`)).toBe('keep');
    await redis.del(`${prefix.slice(0, -1)}-other`);
  });
});
