import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connectCluster, QUEUE_PREFIX, RedisDeployment } from '@gradq/cluster';
import { clusterSuite, REDIS_CLUSTER_UNSUPPORTED, TestRedisCluster } from '@gradq/cluster/testing';
import { Queue } from 'bullmq';
import type { Cluster, Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freezeHoldingShard, RUN, STEPS } from '../testing/cluster-fixtures.js';
import { killLeftoverChildren, lastJson, runCli, SHARED_DATA, spawnCli, waitFor } from '../testing/run-cli.js';

// gradq against a Redis Cluster of the test's own (3 masters, no replicas, a password on every node): the
// coordinator and its workers are each given a different node, find out it is a cluster, and end with the
// --local hash, signed and as the README's ACL user, also when a worker is killed while it holds a shard.

const readme = readFileSync(new URL('../../../../README.md', import.meta.url), 'utf8');
const ACL_LINE = readme.split('\n').find((l) => l.startsWith('redis-cli ACL SETUSER gradq ')) ?? '';

const unsupported = REDIS_CLUSTER_UNSUPPORTED !== undefined;
const password = randomBytes(12).toString('hex');
let cluster: TestRedisCluster;
let admin: Cluster;
/** A plain connection to each master (the cluster client knows its nodes only once it has connected). */
let masters: Redis[];
let tmp: string;
let secretFile: string;

/** `gradq ARGS…` with the URL of node `node` (the default user's password, or `user`'s) in the environment, not in argv. */
function gradq(args: string[], node: number, user?: string): ReturnType<typeof spawnCli> {
  const url = user === undefined ? cluster.url(node, password) : cluster.url(node, password).replace('redis://', `redis://${user}`);
  return spawnCli(args, { GRADQ_REDIS_URL: url });
}

/** The highest θ version the run on `queue` has on any master (-1 before the first). */
async function publishedStep(queue: string): Promise<number> {
  const versions = await Promise.all(
    admin
      .nodes('master')
      .map(async (node) =>
        (await node.keys(`${QUEUE_PREFIX}:${queue}:run:*:params:*`)).map((k) => Number(k.slice(k.lastIndexOf(':') + 1))),
      ),
  );
  return Math.max(-1, ...versions.flat());
}

/** Every key on `queue`'s prefixes (BullMQ's and the runs') on every master. */
async function keysOf(queue: string): Promise<string[]> {
  const lists = await Promise.all(masters.map((node) => node.keys(`${QUEUE_PREFIX}:*${queue}*`)));
  return lists.flat();
}

beforeAll(async () => {
  if (unsupported) return;
  tmp = mkdtempSync(join(tmpdir(), 'gradq-rcluster-'));
  secretFile = join(tmp, 'secret');
  writeFileSync(secretFile, `${randomBytes(32).toString('hex')}\n`, { mode: 0o600 });
  cluster = await TestRedisCluster.start({ password });
  admin = connectCluster(cluster.url(0, password), () => undefined);
  masters = cluster.ports.map((_, i) => cluster.node(i));
}, 90_000);

afterAll(async () => {
  if (unsupported) return;
  killLeftoverChildren();
  await admin?.quit().catch(() => admin.disconnect());
  for (const m of masters ?? []) m.disconnect();
  await cluster?.stop();
  rmSync(tmp, { recursive: true, force: true });
});

describe.skipIf(unsupported)(clusterSuite('gradq on a Redis Cluster'), () => {
  it('coordinator and 2 workers on different nodes end with the --local hash, signed, as the README’s ACL user; the run leaves no keys', async () => {
    const queue = `test-${randomUUID().slice(0, 8)}`;
    // The README's ACL on every node (an ACL is per node), with the cluster's password for the user.
    const words = [...ACL_LINE.matchAll(/'([^']*)'|(\S+)/g)].map((m) => (m[1] ?? m[2]).replace('PASSWORD', password));
    expect(words.slice(0, 3), 'the README gives the ACL as one redis-cli line').toEqual(['redis-cli', 'ACL', 'SETUSER']);
    for (const node of masters) {
      expect(await node.call('ACL', ...words.slice(2))).toBe('OK');
      await node.call('ACL', 'LOG', 'RESET');
    }
    const local = await runCli(['train', '--local', ...RUN]);
    expect(local.code, local.stderr).toBe(0);
    const workers = [0, 2].map((node, i) =>
      gradq(['worker', '--queue', queue, '--name', `w${i}`, '--secret-file', secretFile, '--data-dir', SHARED_DATA], node, 'gradq'),
    );
    const run = await gradq(['train', '--workers', '0', '--queue', queue, '--secret-file', secretFile, ...RUN], 1, 'gradq').done;
    expect(run.code, run.stderr).toBe(0);
    expect(lastJson(run.stdout)).toMatchObject({
      params_sha256: lastJson(local.stdout).params_sha256,
      applied_steps: STEPS,
      results_rejected: 0,
    });
    expect(run.stderr).toMatch(/^run \S+ on queue "test-\w+" at redis:\/\/gradq:\*\*\*@127\.0\.0\.1:\d+ \(Redis Cluster\)/m);
    for (const w of workers) w.child.kill('SIGTERM');
    const exits = await Promise.all(workers.map((w) => w.done));
    expect(exits.map((e) => e.code)).toEqual([0, 0]);
    for (const e of exits) {
      expect(e.stderr).toMatch(
        /taking jobs from queue "test-\w+" at redis:\/\/gradq:\*\*\*@127\.0\.0\.1:\d+ \(Redis Cluster\); jobs, θ and results signed/,
      );
      expect(e.stderr).not.toMatch(/MOVED|CROSSSLOT|failed/);
    }
    expect([run.stderr, ...exits.map((e) => e.stderr)].join('\n')).not.toContain(password);
    for (const node of masters) expect(await node.call('ACL', 'LOG'), 'nothing gradq did was denied').toEqual([]);
    // θ and the results went away with the run; what is left is BullMQ's, all in the queue's one slot.
    const left = await keysOf(queue);
    expect(left.filter((k) => k.includes(':run:'))).toEqual([]);
    expect(
      left.every((k) => k.startsWith(`${QUEUE_PREFIX}:{${queue}}:`)),
      left.join(' '),
    ).toBe(true);
  }, 240_000);

  it('survives a worker killed while it holds a shard: the --local hash, no step applied twice', async () => {
    const queue = `test-${randomUUID().slice(0, 8)}`;
    const longRun = RUN.map((a) => (a === '2' ? '4' : a)); // 4 epochs: time to catch worker a holding a shard
    const local = await runCli(['train', '--local', ...longRun]);
    expect(local.code, local.stderr).toBe(0);
    const worker = (name: string): ReturnType<typeof spawnCli> =>
      gradq(['worker', '--queue', queue, '--name', name, '--quiet', '--data-dir', SHARED_DATA], 2);
    const coordinator = gradq(['train', '--workers', '0', '--queue', queue, ...longRun], 0);
    let finished = false;
    void coordinator.done.then(() => (finished = true));
    // Worker a runs alone at first, so an active job is a's: freeze it until it holds one, then start worker b.
    const a = worker('a');
    await waitFor('step 30', async () => finished || (await publishedStep(queue)) >= 30, 120_000);
    const deployment = RedisDeployment.of(cluster.url(1, password), 'cluster');
    const jobs = new Queue(queue, { connection: admin, prefix: deployment.queuePrefix(queue) });
    await freezeHoldingShard(a.child, jobs, () => finished);
    await jobs.close();
    const b = worker('b');
    a.child.kill('SIGKILL');
    const r = await coordinator.done;
    expect(r.code, r.stderr).toBe(0);
    expect(lastJson(r.stdout)).toMatchObject({ params_sha256: lastJson(local.stdout).params_sha256, applied_steps: 2 * STEPS });
    b.child.kill('SIGTERM');
    expect((await b.done).code).toBe(0);
  }, 300_000);
});
