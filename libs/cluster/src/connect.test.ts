import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { InputError } from '@gradq/cli';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { deleteKeysWithPrefix } from './cleanup.js';
import { connectRedis, RedisRefusedError, RedisUnavailableError, waitForRedis } from './connect.js';
import { REDIS_SERVER_ON_PATH, TestRedisServer } from './testing/redis-server.js';

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
  it('returns when Redis answers, saying it is standalone, without logging', async () => {
    const lines: string[] = [];
    await expect(waitForRedis(REDIS, (l) => lines.push(l), 1)).resolves.toBe('standalone');
    expect(lines).toEqual([]);
  });
  it('gives up after the given tries with a RedisUnavailableError that names the URL without its password', async () => {
    const lines: string[] = [];
    const error = await waitForRedis('redis://:topsecret@127.0.0.1:1', (l) => lines.push(l), 2).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RedisUnavailableError);
    expect(error).toBeInstanceOf(InputError); // one line and exit code 2, for `gradq train` and `gradq worker` alike
    expect((error as Error).message).toMatch(
      /^Redis at redis:\/\/:\*\*\*@127\.0\.0\.1:1 does not answer after 2 tries \(connect ECONNREFUSED .+\)$/,
    );
    expect(lines).toHaveLength(1); // one retry notice between the two tries
    expect(lines[0]).toMatch(/^Redis at redis:\/\/:\*\*\*@127\.0\.0\.1:1 does not answer .*\(1\/2\)$/);
    expect([...lines, (error as Error).message].join('\n')).not.toContain('topsecret');
  });
});

describe.skipIf(!REDIS_SERVER_ON_PATH)('waitForRedis against a server that refuses the URL', () => {
  let server: TestRedisServer;
  beforeAll(async () => {
    server = await TestRedisServer.start({ password: 'hunter2' });
  });
  afterAll(async () => {
    await server?.kill();
  });

  /** What waitForRedis(url) throws (with 5 tries allowed), what it logged, and how long it took. */
  async function refusal(url: string): Promise<{ error: unknown; lines: string[]; ms: number }> {
    const lines: string[] = [];
    const start = performance.now();
    const error = await waitForRedis(url, (l) => lines.push(l), 5).catch((e: unknown) => e);
    return { error, lines, ms: performance.now() - start };
  }

  it.each([
    [
      'a wrong password',
      ':wrong@',
      /^Redis at redis:\/\/:\*\*\*@127\.0\.0\.1:\d+: authentication failed: the server refused the URL's user or password \(WRONGPASS .*\)$/,
    ],
    [
      'a wrong user',
      'bob:hunter2@',
      /^Redis at redis:\/\/bob:\*\*\*@127\.0\.0\.1:\d+: authentication failed: the server refused the URL's user or password \(WRONGPASS .*\)$/,
    ],
    [
      'no password',
      '',
      /^Redis at redis:\/\/127\.0\.0\.1:\d+: authentication failed: the server needs a password and none was given \(NOAUTH .*\); put it in the URL, redis:\/\/:PASSWORD@host:port$/,
    ],
  ])('says authentication failed for %s, at once, without the password', async (_what, credentials, message) => {
    const { error, lines, ms } = await refusal(`redis://${credentials}127.0.0.1:${server.port}`);
    expect(error).toBeInstanceOf(RedisRefusedError);
    expect(error).toBeInstanceOf(InputError);
    expect((error as Error).message).toMatch(message);
    expect(lines).toEqual([]); // not tried again
    expect(ms).toBeLessThan(1000);
    expect((error as Error).message).not.toContain('hunter2');
  });

  it('accepts the right password', async () => {
    await expect(waitForRedis(server.url('hunter2'), () => undefined, 1)).resolves.toBe('standalone');
  });
});

describe('waitForRedis with a database the server does not have', () => {
  it('fails at once with a RedisRefusedError naming the database', async () => {
    const lines: string[] = [];
    const error = await waitForRedis(`${REDIS}/99`, (l) => lines.push(l), 5).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RedisRefusedError);
    expect((error as Error).message).toBe(
      'Redis at redis://127.0.0.1:6379/99: the server has no database 99 (ERR DB index is out of range); use one it has (…/0 to …/15 by default)',
    );
    expect(lines).toEqual([]);
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
