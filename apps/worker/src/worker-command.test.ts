import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import {
  deleteKeysWithPrefix,
  encodeParams,
  MessageSigner,
  QUEUE_PREFIX,
  readResultMessage,
  runKeys,
  shardJobId,
  signShardJob,
  validateShardResult,
  type ShardJob,
  type ShardResult,
} from '@gradq/cluster';
import { Model } from '@gradq/nn';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, afterEach, describe, expect, it } from 'vitest';

const BIN = fileURLToPath(new URL('../../coordinator/bin/gradq.js', import.meta.url));
const DATA = fileURLToPath(new URL('../../../../shared/data', import.meta.url));
const connection = new Redis('redis://127.0.0.1:6379', { maxRetriesPerRequest: null });
const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const clean of cleanups.splice(0).reverse()) await clean();
});
afterAll(async () => {
  await connection.quit();
});

/** Starts `gradq worker …`; the process is killed after the test if it is still running. */
function run(args: string[], env: NodeJS.ProcessEnv = {}) {
  const child = spawn(process.execPath, [BIN, 'worker', ...args], { env: { ...process.env, ...env } });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const done = new Promise<{ code: number | null; stderr: string }>((resolve) => child.on('close', (code) => resolve({ code, stderr })));
  cleanups.push(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await done;
  });
  return { child, done, stderr: () => stderr };
}

/** A fresh queue under the gradq prefix; obliterated after the test. */
function testQueue(): Queue<ShardJob, ShardResult> {
  const name = `test-${randomUUID()}`;
  const queue = new Queue<ShardJob, ShardResult>(name, { connection, prefix: QUEUE_PREFIX });
  cleanups.push(async () => {
    await queue.obliterate({ force: true });
    await queue.close();
  });
  return queue;
}

async function until(check: () => Promise<boolean>, what: string, ms = 20_000): Promise<void> {
  const start = Date.now();
  while (!(await check())) {
    if (Date.now() - start > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('gradq worker', () => {
  it('registers with its queue and closes cleanly with exit code 0 on SIGTERM', async () => {
    const queue = testQueue();
    const w = run(['--queue', queue.name, '--data-dir', DATA]);
    await until(async () => (await queue.getWorkersCount()) === 1, `a worker on ${queue.name}; stderr: ${w.stderr()}`);
    const start = Date.now();
    w.child.kill('SIGTERM');
    const { code, stderr } = await w.done;
    expect(code, stderr).toBe(0);
    expect(Date.now() - start).toBeLessThan(5000);
    expect(stderr).toContain('SIGTERM, closing');
    await until(async () => (await queue.getWorkersCount()) === 0, 'the worker to unregister', 5000);
  });

  it('computes a shard job from the queue and returns a valid result; a job with a bad range fails naming it', async () => {
    const queue = testQueue();
    const keys = runKeys(queue.name, 'r1');
    cleanups.push(() => deleteKeysWithPrefix(connection, keys.prefix));
    await connection.set(keys.params(0), Buffer.from(encodeParams(new Model('mlp:784-16-10', { seed: 3 }).params)));
    const data: ShardJob = {
      v: 3, run: 'r1', step: 0, shard: 0, attempt: 0, dataset: 'mnist', trainSamples: 512, seed: 7, epoch: 0, start: 0, end: 32,
      model: 'mlp:784-16-10', shift: 0, paramsKey: keys.params(0), resultsKey: keys.results,
    }; // prettier-ignore
    const good = await queue.add('shard', data, { jobId: shardJobId('r1', 0, 0, 0) });
    const bad = await queue.add('shard', { ...data, shard: 1, end: 600 }, { jobId: shardJobId('r1', 0, 1, 0) });
    const w = run(['--queue', queue.name, '--data-dir', DATA, '--name', 'w1', '--quiet']);
    await until(
      async () => (await bad.getState()) === 'failed' && (await good.getState()) === 'completed',
      `both jobs; stderr: ${w.stderr()}`,
    );
    const finished = await queue.getJob(shardJobId('r1', 0, 0, 0));
    expect(validateShardResult(finished?.returnvalue, { run: 'r1', step: 0, shard: 0, count: 32 })).toMatchObject({ worker: 'w1' });
    expect((await queue.getJob(shardJobId('r1', 0, 1, 0)))?.failedReason).toContain('range [0, 600) is not within 512 samples');
    // One message on the results list: the good shard's (a job that fails validation is not trusted to say where to report).
    const pushed = await connection.lrangeBuffer(keys.results, 0, -1);
    expect(pushed.map((m) => readResultMessage(m).header)).toEqual([finished?.returnvalue]);
  });

  it('with the secret in $GRADQ_SECRET, computes a signed job into a signed result; an unsigned job fails unanswered', async () => {
    const secret = 'a secret of the test, 32 bytes..';
    const signer = new MessageSigner(Buffer.from(secret));
    const queue = testQueue();
    const keys = runKeys(queue.name, 'r2');
    cleanups.push(() => deleteKeysWithPrefix(connection, keys.prefix));
    await connection.set(keys.params(0), encodeParams(new Model('mlp:784-16-10', { seed: 3 }).params, { key: keys.params(0), signer }));
    const data: ShardJob = {
      v: 3, run: 'r2', step: 0, shard: 0, attempt: 0, dataset: 'mnist', trainSamples: 512, seed: 7, epoch: 0, start: 0, end: 32,
      model: 'mlp:784-16-10', shift: 0, paramsKey: keys.params(0), resultsKey: keys.results,
    }; // prettier-ignore
    const good = await queue.add('shard', signShardJob(data, signer), { jobId: shardJobId('r2', 0, 0, 0) });
    const unsigned = await queue.add('shard', { ...data, shard: 1 }, { jobId: shardJobId('r2', 0, 1, 0) });
    const w = run(['--queue', queue.name, '--data-dir', DATA, '--name', 'w2'], { GRADQ_SECRET: secret });
    await until(
      async () => (await unsigned.getState()) === 'failed' && (await good.getState()) === 'completed',
      `both jobs; stderr: ${w.stderr()}`,
    );
    expect(w.stderr()).toContain('signed with the secret from $GRADQ_SECRET');
    expect(w.stderr()).not.toContain(secret);
    expect((await queue.getJob(shardJobId('r2', 0, 1, 0)))?.failedReason).toContain('shard job is not signed');
    const pushed = await connection.lrangeBuffer(keys.results, 0, -1);
    expect(pushed.map((m) => readResultMessage(m, undefined, signer).header)).toEqual([(await queue.getJob(good.id ?? ''))?.returnvalue]);
  });

  it.each([
    [['--secret-file', '/nonexistent/secret'], {}, 'secret file /nonexistent/secret: cannot open it (ENOENT)'],
    [[], { GRADQ_SECRET: 'hunter2' }, '$GRADQ_SECRET: 7 bytes, a secret needs at least 16 (e.g. openssl rand -hex 32)'],
    [['--redis', 'http://:pw@example:80'], {}, 'Redis URL http://:***@example:80: scheme http: is not redis: or rediss:'],
    [[], { GRADQ_REDIS_URL: 'http://:pw@example:80' }, 'Redis URL http://:***@example:80: scheme http: is not redis: or rediss:'],
    [['--queue', 'a:b'], {}, 'invalid queue "a:b" (use 1-64 letters, digits, _ . -)'],
  ])('refuses %j %j with exit code 2 and one line', async (args, env, line) => {
    const { code, stderr } = await run(args, env).done;
    expect(code, stderr).toBe(2);
    expect(stderr.trim().split('\n')).toEqual([`gradq: error: ${line}`]);
    expect(stderr).not.toContain('pw@');
    expect(stderr).not.toContain('hunter2');
  });
});
