import { InputError } from '@gradq/cli';
import { Cluster, Redis, ReplyError, type ClusterOptions, type RedisOptions } from 'ioredis';
import { isIP } from 'node:net';
import { checkRedisUrl, redactRedisUrl } from './redis-url.js';
import type { RedisTopology } from './redis-deployment.js';

/**
 * An ioredis connection for BullMQ (maxRetriesPerRequest: null, as BullMQ requires for workers) that retries
 * with capped exponential backoff and reports each failure through `log` once per outage, never silently.
 */
export function connectRedis(url: string, log: (line: string) => void, options: RedisOptions = {}): Redis {
  return reportOutages(
    new Redis(url, {
      maxRetriesPerRequest: null,
      enableReadyCheck: true,
      retryStrategy: backoff,
      ...options,
    }),
    url,
    log,
  );
}

/**
 * connectRedis for a Redis Cluster: an ioredis Cluster that starts from the node of `url` (any node), finds the
 * others itself and follows MOVED and ASK; every node connection has the URL's user, password and TLS.
 */
export function connectCluster(url: string, log: (line: string) => void, options: ClusterOptions = {}): Cluster {
  const u = checkRedisUrl(url);
  const host = u.hostname.replace(/^\[(.*)\]$/, '$1');
  return reportOutages(
    new Cluster([{ host, port: u.port === '' ? 6379 : Number(u.port) }], {
      clusterRetryStrategy: backoff,
      ...options,
      redisOptions: {
        username: u.username === '' ? undefined : decodeURIComponent(u.username),
        password: u.password === '' ? undefined : decodeURIComponent(u.password),
        tls: u.protocol === 'rediss:' ? { servername: isIP(host) === 0 ? host : undefined } : undefined,
        maxRetriesPerRequest: null,
        enableReadyCheck: true,
        ...options.redisOptions,
      },
    }),
    url,
    log,
  );
}

/** Capped exponential backoff between reconnection attempts. */
const backoff = (times: number): number => Math.min(100 * 2 ** Math.min(times, 10), 5000);

/** Logs the first error of an outage and the reconnection that ends it, never silently. */
function reportOutages<C extends Redis | Cluster>(redis: C, url: string, log: (line: string) => void): C {
  const safe = redactRedisUrl(url);
  let down = false;
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
 * (without its password) and what went wrong. A server that answers with an error (a wrong or missing password,
 * a database number it does not have) is not asked again: RedisRefusedError at once. Resolves to what answered:
 * a node of a Redis Cluster (INFO cluster says cluster_enabled:1) or a standalone server.
 */
export async function waitForRedis(url: string, log: (line: string) => void, attempts = 5): Promise<RedisTopology> {
  const safe = redactRedisUrl(url);
  let last = '';
  for (let i = 0; i < attempts; i++) {
    const redis = new Redis(url, {
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
      connectTimeout: 3000,
      lazyConnect: true,
      disconnectTimeout: 100,
    });
    // ioredis reports why a connection failed (ECONNREFUSED, a refused AUTH or SELECT) in an 'error' event; the
    // promise of connect() only says "Connection is closed.". A failed SELECT does not even fail connect().
    let reason: Error | undefined;
    redis.on('error', (e: Error) => (reason ??= e));
    try {
      await redis.connect();
      await redis.ping();
      const topology = topologyFromInfo(await redis.info('cluster'));
      // A cluster client reads the slot table (CLUSTER SLOTS) and the cluster's state (CLUSTER INFO, ioredis' ready
      // check) first of all, and waits for ever when it may not: a user who may not is refused here.
      if (topology === 'cluster') for (const sub of ['SLOTS', 'INFO']) await redis.call('CLUSTER', sub);
      if (reason === undefined) return topology;
    } catch (e) {
      reason ??= e as Error;
    } finally {
      redis.disconnect();
    }
    if (reason instanceof ReplyError && !TRANSIENT_REPLY.test(reason.message)) throw refused(url, reason.message);
    last = reason.message;
    if (i + 1 < attempts) {
      const delay = 250 * 2 ** i;
      log(`Redis at ${safe} does not answer (${last}); retrying in ${(delay / 1000).toFixed(2)} s (${i + 1}/${attempts})`);
      await new Promise((r) => setTimeout(r, delay));
    }
  }
  throw new RedisUnavailableError(`Redis at ${safe} does not answer after ${attempts} tries (${last})`);
}

/** What INFO cluster says the server is. */
export function topologyFromInfo(info: string): RedisTopology {
  return /^cluster_enabled:1\s*$/m.test(info) ? 'cluster' : 'standalone';
}

/** Error replies of a server that will answer in a moment (loading its data, busy with a script, a replica). */
const TRANSIENT_REPLY = /^(LOADING|BUSY|MASTERDOWN|TRYAGAIN)\b/;

/** What Redis's error reply at connect means, in a RedisRefusedError (never quoting the password). */
function refused(url: string, reply: string): RedisRefusedError {
  const safe = redactRedisUrl(url);
  if (/^NOAUTH\b/.test(reply)) {
    return new RedisRefusedError(
      `Redis at ${safe}: authentication failed: the server needs a password and none was given (${reply}); put it in the URL, redis://:PASSWORD@host:port`,
    );
  }
  if (/^WRONGPASS\b|invalid password|^ERR AUTH\b/i.test(reply)) {
    return new RedisRefusedError(`Redis at ${safe}: authentication failed: the server refused the URL's user or password (${reply})`);
  }
  if (/DB index is out of range/i.test(reply)) {
    return new RedisRefusedError(
      `Redis at ${safe}: the server has no database ${new URL(url).pathname.slice(1)} (${reply}); use one it has (…/0 to …/15 by default)`,
    );
  }
  if (/^NOPERM\b/.test(reply)) {
    return new RedisRefusedError(
      `Redis at ${safe}: the URL's user may not run a command gradq needs (${reply}); grant it as the README's ACL does`,
    );
  }
  return new RedisRefusedError(`Redis at ${safe} refused the connection: ${reply}`);
}

/** Redis does not answer at the URL: bad input (the URL), or a server that is down. */
export class RedisUnavailableError extends InputError {
  override name = 'RedisUnavailableError';
}

/** Redis answers at the URL but refuses it (authentication, database number): asking again would not help. */
export class RedisRefusedError extends InputError {
  override name = 'RedisRefusedError';
}
