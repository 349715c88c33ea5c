import { randomUUID } from 'node:crypto';
import { Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClusterConfigError } from './cluster-config-error.js';
import { ClusterTensorConnection } from './cluster-tensor-connection.js';
import { RedisRefusedError, topologyFromInfo, waitForRedis } from './connect.js';
import { RedisDeployment } from './redis-deployment.js';
import { TensorConnection } from './tensor-connection.js';
import { clusterSuite, REDIS_CLUSTER_UNSUPPORTED, TestRedisCluster } from './testing/redis-cluster.js';

const REDIS = 'redis://127.0.0.1:6379';

describe('topologyFromInfo', () => {
  it.each([
    ['# Cluster\r\ncluster_enabled:1\r\n', 'cluster'],
    ['# Cluster\r\ncluster_enabled:0\r\n', 'standalone'],
    ['# Cluster\ncluster_enabled:1', 'cluster'],
    ['', 'standalone'], // a server that says nothing of clusters has none
    ['# Cluster\r\ncluster_enabled:10\r\n', 'standalone'],
  ])('reads %j as %s', (info, topology) => {
    expect(topologyFromInfo(info)).toBe(topology);
  });
});

describe('RedisDeployment', () => {
  it('finds the shared Redis standalone, with the plain prefix and one TensorConnection', async () => {
    const deployment = await RedisDeployment.reach(REDIS, () => undefined, 1);
    expect(deployment.topology).toBe('standalone');
    expect(deployment.queuePrefix('q1')).toBe('gradq');
    const tensors = deployment.tensors();
    expect(tensors).toBeInstanceOf(TensorConnection);
    tensors.disconnect();
  });
  it('gives a cluster a hash-tagged prefix per queue, under gradq:', () => {
    const deployment = RedisDeployment.of('redis://127.0.0.1:7000', 'cluster');
    expect(deployment.queuePrefix('q1')).toBe('gradq:{q1}');
    expect(deployment.describe()).toBe('redis://127.0.0.1:7000 (Redis Cluster)');
    expect(RedisDeployment.of('redis://127.0.0.1:7000/0', 'cluster').topology).toBe('cluster');
  });
  it('refuses a database other than 0 on a cluster, quoting the URL without its password', () => {
    const attempt = () => RedisDeployment.of('redis://:pw@127.0.0.1:7000/3', 'cluster');
    expect(attempt).toThrow(ClusterConfigError);
    expect(attempt).toThrow('Redis URL redis://:***@127.0.0.1:7000/3: a Redis Cluster has database 0 only, not 3 (drop the /3)');
  });
});

describe.skipIf(REDIS_CLUSTER_UNSUPPORTED !== undefined)(clusterSuite('against a Redis Cluster of the test’s own'), () => {
  let cluster: TestRedisCluster;
  const password = randomUUID();
  beforeAll(async () => {
    cluster = await TestRedisCluster.start({ password });
  }, 60_000);
  afterAll(async () => {
    await cluster?.stop();
  });

  it('is detected as one at any of its nodes', async () => {
    for (let node = 0; node < 3; node++) {
      expect(await waitForRedis(cluster.url(node, password), () => undefined, 1)).toBe('cluster');
      const deployment = await RedisDeployment.reach(cluster.url(node, password), () => undefined, 1);
      const tensors = deployment.tensors();
      expect(tensors).toBeInstanceOf(ClusterTensorConnection);
      tensors.disconnect();
    }
  });

  it('refuses a wrong password with the RedisRefusedError of a standalone server', async () => {
    const error = await waitForRedis(cluster.url(1, 'wrong'), () => undefined, 3).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RedisRefusedError);
    expect((error as Error).message).toMatch(/authentication failed: the server refused the URL's user or password \(WRONGPASS/);
  });

  it.each([
    ['the slot table', 'slots', '+cluster|info'],
    ['the cluster’s state', 'info', '+cluster|slots'],
  ])('refuses a user who may not read %s (CLUSTER %s), saying so', async (_what, denied, allowed) => {
    const nodes = cluster.ports.map((_, i) => cluster.node(i));
    try {
      for (const node of nodes)
        await node.call('ACL', 'SETUSER', `no${denied}`, 'reset', 'on', '>pw', '~*', '-@all', '+@connection', '+info', allowed);
      const url = cluster.url(0).replace('redis://', `redis://no${denied}:pw@`);
      const error = await waitForRedis(url, () => undefined, 3).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(RedisRefusedError);
      expect((error as Error).message).toMatch(
        new RegExp(
          `^Redis at redis://no${denied}:\\*\\*\\*@127\\.0\\.0\\.1:\\d+: the URL's user may not run a command gradq needs \\(NOPERM .*cluster\\|${denied}.*\\); grant it as the README's ACL does$`,
        ),
      );
    } finally {
      for (const node of nodes) node.disconnect();
    }
  });

  it('runs BullMQ on the cluster with its prefix: every key of the queue in one slot', async () => {
    const deployment = await RedisDeployment.reach(cluster.url(2, password), () => undefined, 1);
    const name = `t-${randomUUID()}`;
    const redis = deployment.connect(() => undefined);
    const queue = new Queue(name, { connection: redis, prefix: deployment.queuePrefix(name) });
    try {
      await queue.addBulk([1, 2, 3].map((i) => ({ name: 'shard', data: { i }, opts: { jobId: `j${i}` } })));
      expect(await queue.getWaitingCount()).toBe(3);
      expect((await queue.getJob('j2'))?.data).toEqual({ i: 2 });
    } finally {
      await queue.obliterate({ force: true });
      await queue.close();
      await redis.quit();
    }
  });
});
