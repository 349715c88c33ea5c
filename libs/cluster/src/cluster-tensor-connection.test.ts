import { randomBytes, randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClusterTensorConnection, parseRedirect } from './cluster-tensor-connection.js';
import { RedisConnectionError } from './tensor-connection.js';
import { clusterSuite, REDIS_CLUSTER_UNSUPPORTED, TestRedisCluster } from './testing/redis-cluster.js';

describe('parseRedirect', () => {
  it.each([
    ['Redis GET: MOVED 3999 127.0.0.1:6381', 'x', { kind: 'MOVED', slot: 3999, node: '127.0.0.1:6381' }],
    ['Redis SET: ASK 12 10.0.0.2:7001', 'x', { kind: 'ASK', slot: 12, node: '10.0.0.2:7001' }],
    ['Redis GET: MOVED 7 :7002', '127.0.0.1', { kind: 'MOVED', slot: 7, node: '127.0.0.1:7002' }], // empty host: the one that answered
    ['Redis GET: MOVED 7 ::1:7002', 'x', { kind: 'MOVED', slot: 7, node: '[::1]:7002' }],
    ['Redis GET: WRONGTYPE Operation against a key holding the wrong kind of value', 'x', undefined],
    ['Redis GET: MOVED nowhere', 'x', undefined],
  ])('reads %j', (message, answeredBy, expected) => {
    expect(parseRedirect(message, answeredBy)).toEqual(expected);
  });
});

describe.skipIf(REDIS_CLUSTER_UNSUPPORTED !== undefined)(clusterSuite('ClusterTensorConnection'), () => {
  const password = randomUUID();
  let cluster: TestRedisCluster;
  let nodes: Redis[];
  const connections: ClusterTensorConnection[] = [];
  const prefix = `gradq:test-${randomUUID().slice(0, 8)}:`;

  /** A connection started from node `node`, closed after the tests. */
  function connect(node: number): ClusterTensorConnection {
    const c = new ClusterTensorConnection(cluster.url(node, password));
    connections.push(c);
    return c;
  }

  /** Which plain node connections hold `key`: the others answer MOVED. */
  async function holders(key: string): Promise<number[]> {
    const found: number[] = [];
    for (const [i, node] of nodes.entries()) {
      if ((await node.getBuffer(key).catch((e: Error) => (/MOVED/.test(e.message) ? null : Promise.reject(e)))) !== null) found.push(i);
    }
    return found;
  }

  /** A key of ours whose slot node `node` serves (found by asking the cluster, not by our slot table). */
  async function keyOn(node: number): Promise<string> {
    for (let i = 0; ; i++) {
      const key = `${prefix}k${i}`;
      const slot = Number(await nodes[0].call('CLUSTER', 'KEYSLOT', key));
      const ranges = (await nodes[0].call('CLUSTER', 'SLOTS')) as Array<[number, number, [string, number]]>;
      const owner = ranges.find(([start, end]) => slot >= start && slot <= end)?.[2][1];
      if (owner === cluster.ports[node]) return key;
    }
  }

  beforeAll(async () => {
    cluster = await TestRedisCluster.start({ password });
    nodes = cluster.ports.map((_, i) => cluster.node(i));
  }, 60_000);
  afterAll(async () => {
    for (const c of connections) c.disconnect();
    for (const n of nodes ?? []) n.disconnect();
    await cluster?.stop();
  });

  it('puts each key on the master of its slot, whichever node it started from', async () => {
    const tensors = connect(1);
    for (let node = 0; node < 3; node++) {
      const key = await keyOn(node);
      const bytes = randomBytes(300_000);
      await tensors.set(key, bytes, 60_000);
      expect(await holders(key)).toEqual([node]);
      expect(await tensors.nodeOf(key)).toBe(`127.0.0.1:${cluster.ports[node]}`);
      const got = await tensors.get(key, (length) => new Uint8Array(length));
      expect(Buffer.from(got as Uint8Array).equals(bytes)).toBe(true);
      await tensors.unlink(key);
      expect(await holders(key)).toEqual([]);
    }
  });

  it('pushes and pops a results list on its slot’s master', async () => {
    const tensors = connect(2);
    const key = await keyOn(0);
    const message = randomBytes(1000);
    await tensors.rpushExpire(key, message, 60_000);
    expect(Number(await nodes[0].pttl(key))).toBeGreaterThan(50_000);
    const popped = await tensors.blpop(key, 1, (length) => new Uint8Array(length));
    expect(Buffer.from(popped as Uint8Array).equals(message)).toBe(true);
    expect(await tensors.blpop(key, 1, (length) => new Uint8Array(length))).toBeNull();
  });

  it('follows ASK while a slot migrates and MOVED once it has, to the node that serves it now', async () => {
    const tensors = connect(0);
    const key = await keyOn(0);
    const bytes = randomBytes(100_000);
    await tensors.set(key, bytes, 60_000);
    expect(await tensors.nodeOf(key)).toBe(`127.0.0.1:${cluster.ports[0]}`); // the table says node 0 from here on
    const slot = Number(await nodes[0].call('CLUSTER', 'KEYSLOT', key));
    const [from, to] = [String(await nodes[0].call('CLUSTER', 'MYID')), String(await nodes[1].call('CLUSTER', 'MYID'))];
    await nodes[1].call('CLUSTER', 'SETSLOT', slot, 'IMPORTING', from);
    await nodes[0].call('CLUSTER', 'SETSLOT', slot, 'MIGRATING', to);
    await nodes[0].call('MIGRATE', '127.0.0.1', cluster.ports[1], '', 0, 5000, 'AUTH', password, 'KEYS', key);
    await expect(nodes[0].get(key)).rejects.toThrow(/^ASK /); // the key is on node 1, the slot still node 0's
    const asked = await tensors.get(key, (length) => new Uint8Array(length));
    expect(Buffer.from(asked as Uint8Array).equals(bytes)).toBe(true);

    for (const node of nodes) await node.call('CLUSTER', 'SETSLOT', slot, 'NODE', to);
    await expect(nodes[0].get(key)).rejects.toThrow(/^MOVED /);
    const moved = await tensors.get(key, (length) => new Uint8Array(length));
    expect(Buffer.from(moved as Uint8Array).equals(bytes)).toBe(true);
    expect(await tensors.nodeOf(key)).toBe(`127.0.0.1:${cluster.ports[1]}`);
    await tensors.set(key, bytes.subarray(0, 10), 60_000);
    expect(await holders(key)).toEqual([1]);
  });

  it('fails a command with a RedisConnectionError (retried by its callers) while the cluster is down, and works again after', async () => {
    const tensors = connect(0);
    const key = await keyOn(2);
    await tensors.set(key, randomBytes(10), 60_000);
    const slot = Number(await nodes[2].call('CLUSTER', 'KEYSLOT', key));
    await nodes[2].call('CLUSTER', 'DELSLOTS', slot); // node 2 no longer serves it: the cluster is down for node 2
    try {
      const error = await tensors.get(key, (length) => new Uint8Array(length)).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(RedisConnectionError);
      expect((error as Error).message).toMatch(/^Redis Cluster at redis:\/\/:\*\*\*@127\.0\.0\.1:\d+: Redis GET: CLUSTERDOWN /);
    } finally {
      await nodes[2].call('CLUSTER', 'ADDSLOTS', slot);
    }
    for (let i = 0; !/cluster_state:ok/.test(String(await nodes[2].call('CLUSTER', 'INFO'))); i++) {
      expect(i, 'the cluster is up again within 10 s').toBeLessThan(200);
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(await tensors.get(key, () => 'skip')).not.toBeNull();
  });
});
