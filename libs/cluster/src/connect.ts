import { Redis, type RedisOptions } from 'ioredis';
import { redactRedisUrl } from './redis-url.js';

/**
 * An ioredis connection for BullMQ (maxRetriesPerRequest: null, as BullMQ requires for workers) that retries
 * with capped exponential backoff and reports each failure through `log` once per outage, never silently.
 */
export function connectRedis(url: string, log: (line: string) => void, options: RedisOptions = {}): Redis {
  const safe = redactRedisUrl(url);
  let down = false;
  const redis = new Redis(url, {
    maxRetriesPerRequest: null,
    enableReadyCheck: true,
    retryStrategy: (times) => Math.min(100 * 2 ** Math.min(times, 10), 5000),
    ...options,
  });
  redis.on('error', (e: Error) => {
    if (!down) log(`Redis at ${safe}: ${e.message}; retrying with backoff`);
    down = true;
  });
  redis.on('ready', () => {
    if (down) log(`Redis at ${safe}: connected again`);
    down = false;
  });
  return redis;
}

/**
 * Pings Redis until it answers or `attempts` tries (with doubling delays) have failed; the error names the URL
 * (without its password) and what went wrong.
 */
export async function waitForRedis(url: string, log: (line: string) => void, attempts = 5): Promise<void> {
  const safe = redactRedisUrl(url);
  let last = '';
  for (let i = 0; i < attempts; i++) {
    const redis = new Redis(url, { maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 3000, lazyConnect: true });
    redis.on('error', () => undefined);
    try {
      await redis.connect();
      await redis.ping();
      return;
    } catch (e) {
      last = (e as Error).message;
    } finally {
      redis.disconnect();
    }
    if (i + 1 < attempts) {
      const delay = 250 * 2 ** i;
      log(`Redis at ${safe} does not answer (${last}); retrying in ${(delay / 1000).toFixed(2)} s (${i + 1}/${attempts})`);
      await new Promise((r) => setTimeout(r, delay));
    }
  }
  throw new RedisUnavailableError(`Redis at ${safe} does not answer after ${attempts} tries (${last})`);
}

export class RedisUnavailableError extends Error {
  override readonly name = 'RedisUnavailableError';
}
