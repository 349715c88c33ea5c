import type { Cluster, Redis } from 'ioredis';

/**
 * Deletes every key starting with `prefix` (a run's tensors) with SCAN + UNLINK; returns how many. On a Redis
 * Cluster every master is scanned, and each key is unlinked on its own (keys of one UNLINK must share a slot).
 */
export async function deleteKeysWithPrefix(redis: Redis | Cluster, prefix: string): Promise<number> {
  if (!('nodes' in redis)) return deleteOnNode(redis, prefix, (keys) => redis.unlink(...keys));
  let deleted = 0;
  for (const node of redis.nodes('master')) {
    deleted += await deleteOnNode(node, prefix, async (keys) =>
      (await Promise.all(keys.map((k) => node.unlink(k)))).reduce((a, b) => a + b, 0),
    );
  }
  return deleted;
}

async function deleteOnNode(redis: Redis, prefix: string, unlink: (keys: string[]) => Promise<number>): Promise<number> {
  let cursor = '0';
  let deleted = 0;
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500);
    cursor = next;
    if (keys.length > 0) deleted += await unlink(keys);
  } while (cursor !== '0');
  return deleted;
}
