import { DEFAULT_REDIS_URL, deleteKeysWithPrefix, QUEUE_PREFIX, redactRedisUrl, REDIS_URL_ENV, RedisDeployment } from '@gradq/cluster';
import { Queue } from 'bullmq';
import type { Cluster, Redis } from 'ioredis';

/**
 * Removes what a finished benchmark run left of its queue on the shared Redis (BullMQ's keys and any of the
 * run's tensors), as BullMQ's own tests obliterate theirs. Only when the run used the Redis this process would
 * reach (`reported` is the run's redacted URL; a private redis-server is gone already), a standalone server or a
 * Redis Cluster. Best effort: a failure is reported through `log`, never thrown, since the measurement is done.
 */
export async function dropQueue(name: string, reported: unknown, log: (line: string) => void): Promise<void> {
  const url = process.env[REDIS_URL_ENV] || DEFAULT_REDIS_URL;
  if (reported !== redactRedisUrl(url)) return;
  let redis: Redis | Cluster | undefined;
  try {
    const deployment = await RedisDeployment.reach(url, () => undefined, 1);
    redis = deployment.connect(() => undefined);
    const queue = new Queue(name, { connection: redis, prefix: deployment.queuePrefix(name) });
    await queue.obliterate({ force: true });
    await queue.close();
    await deleteKeysWithPrefix(redis, `${QUEUE_PREFIX}:${name}:`);
  } catch (e) {
    log(`could not remove queue "${name}" from ${redactRedisUrl(url)}: ${(e as Error).message}`);
  } finally {
    redis?.disconnect();
  }
}
