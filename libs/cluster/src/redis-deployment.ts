import type { Cluster, Redis } from 'ioredis';
import { ClusterConfigError } from './cluster-config-error.js';
import { ClusterTensorConnection } from './cluster-tensor-connection.js';
import { connectCluster, connectRedis, waitForRedis } from './connect.js';
import { checkRedisUrl, redactRedisUrl } from './redis-url.js';
import { QUEUE_PREFIX } from './run-keys.js';
import { TensorConnection, type TensorStore } from './tensor-connection.js';

/** What answers at a Redis URL: one server, or a node of a Redis Cluster. */
export type RedisTopology = 'standalone' | 'cluster';

/**
 * The one place where a standalone Redis and a Redis Cluster differ, for the coordinator and the workers alike:
 * which client BullMQ gets (ioredis Redis or Cluster), the queue's key prefix, and the connection that carries
 * the tensors (one TensorConnection, or one per master, by hash slot).
 *
 * On a cluster, BullMQ's Lua scripts touch several keys of a queue at once, so all of them must share one hash
 * slot: the prefix holds a hash tag, `gradq:{<queue>}` (still under `gradq:*`, the README's ACL pattern). gradq's
 * own keys (θ of each step, the results list; run-keys.ts) are read and written one key per command, so each
 * lives in the slot of its own name: θ of consecutive steps falls on different masters.
 */
export class RedisDeployment {
  private constructor(
    readonly url: string,
    readonly topology: RedisTopology,
  ) {}

  /**
   * Waits until Redis answers at `url` (see waitForRedis, which also says what answered). A cluster has
   * database 0 only: a URL naming another is refused.
   */
  static async reach(url: string, log: (line: string) => void, attempts = 5): Promise<RedisDeployment> {
    checkRedisUrl(url);
    const topology = await waitForRedis(url, log, attempts);
    return RedisDeployment.of(url, topology);
  }

  /** The deployment at `url` when its topology is known (tests, tools). */
  static of(url: string, topology: RedisTopology): RedisDeployment {
    const db = checkRedisUrl(url).pathname.replace(/^\//, '');
    if (topology === 'cluster' && db !== '' && Number(db) !== 0) {
      throw new ClusterConfigError(`Redis URL ${redactRedisUrl(url)}: a Redis Cluster has database 0 only, not ${db} (drop the /${db})`);
    }
    return new RedisDeployment(url, topology);
  }

  /** BullMQ's `prefix` for `queue` (the Queue's and the Worker's must be the same). */
  queuePrefix(queue: string): string {
    return this.topology === 'cluster' ? `${QUEUE_PREFIX}:{${queue}}` : QUEUE_PREFIX;
  }

  /** The connection for BullMQ and the run's housekeeping (see connectRedis). */
  connect(log: (line: string) => void): Redis | Cluster {
    return this.topology === 'cluster' ? connectCluster(this.url, log) : connectRedis(this.url, log);
  }

  /** A connection of its own for θ and the result messages. */
  tensors(): TensorStore {
    return this.topology === 'cluster' ? new ClusterTensorConnection(this.url) : new TensorConnection(this.url);
  }

  /** For log lines: the URL without its password, and "(Redis Cluster)" when it is one. */
  describe(): string {
    return `${redactRedisUrl(this.url)}${this.topology === 'cluster' ? ' (Redis Cluster)' : ''}`;
  }
}
