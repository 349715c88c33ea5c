import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { REDIS_SERVER_ON_PATH, TestRedisServer } from '@gradq/cluster/testing';
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
import { STOP_AFTER_FAILURES } from './failure-streak.js';

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

/**
 * Starts `gradq worker …` (with `ipc`, connected by an IPC channel, as a coordinator's local worker is); the process
 * is killed after the test if it is still running.
 */
function run(args: string[], env: NodeJS.ProcessEnv = {}, ipc = false) {
  const stdio: Array<'ignore' | 'pipe' | 'ipc'> = ipc ? ['ignore', 'pipe', 'pipe', 'ipc'] : ['pipe', 'pipe', 'pipe'];
  const child = spawn(process.execPath, [BIN, 'worker', ...args], { env: { ...process.env, ...env }, stdio });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  // With an IPC channel the parent may have let go of (disconnect), 'close' does not come: wait for the exit.
  const done = new Promise<{ code: number | null; stderr: string }>((resolve) =>
    child.on(ipc ? 'exit' : 'close', (code) => resolve({ code, stderr })),
  );
  cleanups.push(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await done;
  });
  return { child, done, stderr: () => stderr };
}

/** A fresh queue under the gradq prefix; obliterated after the test. */
function testQueue(): Queue<ShardJob, ShardResult[]> {
  const name = `test-${randomUUID()}`;
  const queue = new Queue<ShardJob, ShardResult[]>(name, { connection, prefix: QUEUE_PREFIX });
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

  it.each([
    ['on SIGTERM', (w: ReturnType<typeof run>) => w.child.kill('SIGTERM')],
    ['when the coordinator goes', (w: ReturnType<typeof run>) => w.child.disconnect()],
  ])('started as a local worker (an IPC channel to its coordinator), exits at once %s', async (_, stop) => {
    const queue = testQueue();
    const w = run(['--queue', queue.name, '--data-dir', DATA], {}, true);
    await until(async () => (await queue.getWorkersCount()) === 1, `a worker on ${queue.name}; stderr: ${w.stderr()}`);
    const start = Date.now();
    stop(w);
    const { code, stderr } = await w.done;
    expect(code, stderr).toBe(0);
    expect(Date.now() - start).toBeLessThan(2000); // the channel kept it alive until its coordinator SIGKILLed it (5 s)
  });

  it('computes a shard job from the queue and returns a valid result; a job with a bad range fails naming it', async () => {
    const queue = testQueue();
    const keys = runKeys(queue.name, 'r1');
    cleanups.push(() => deleteKeysWithPrefix(connection, keys.prefix));
    await connection.set(keys.params(0), Buffer.from(encodeParams(new Model('mlp:784-16-10', { seed: 3 }).params)));
    const data: ShardJob = {
      v: 5, run: 'r1', step: 0, shard: 0, attempt: 0, dataset: 'mnist', trainSamples: 512, seed: 7, epoch: 0, start: 0, end: 32, cuts: [],
      model: 'mlp:784-16-10', shift: 0, paramsKey: keys.params(0), resultsKey: keys.results, codec: 'none', residualIn: [], residualOut: [],
    }; // prettier-ignore
    // Bad jobs first, more than a worker's own failures in a row would take to stop it: bad jobs do not count.
    const bad = await queue.add('shard', { ...data, shard: 1, end: 600 }, { jobId: shardJobId('r1', 0, 1, 0) });
    for (let attempt = 1; attempt <= STOP_AFTER_FAILURES; attempt++) {
      await queue.add('shard', { ...data, shard: 1, attempt, dataset: 'cifar' }, { jobId: shardJobId('r1', 0, 1, attempt) });
    }
    const good = await queue.add('shard', data, { jobId: shardJobId('r1', 0, 0, 0) });
    const w = run(['--queue', queue.name, '--data-dir', DATA, '--name', 'w1', '--quiet']);
    await until(
      async () => (await bad.getState()) === 'failed' && (await good.getState()) === 'completed',
      `both jobs; stderr: ${w.stderr()}`,
    );
    expect(w.child.exitCode).toBeNull();
    expect(w.stderr()).toContain('shard job: dataset "cifar" is not one of mnist, fashion-mnist');
    const finished = await queue.getJob(shardJobId('r1', 0, 0, 0));
    expect(validateShardResult(finished?.returnvalue[0], { run: 'r1', step: 0, shard: 0, ranges: [[0, 32]] })).toMatchObject({
      worker: 'w1',
    });
    expect((await queue.getJob(shardJobId('r1', 0, 1, 0)))?.failedReason).toContain('range [0, 600) is not within 512 samples');
    // One message on the results list: the good shard's (a job that fails validation is not trusted to say where to report).
    const pushed = (await connection.lrangeBuffer(keys.results, 0, -1)).map((m) => readResultMessage(m).header);
    expect(pushed.filter((h) => !('error' in h))).toEqual(finished?.returnvalue);
    expect(pushed.filter((h) => 'error' in h)).toHaveLength(STOP_AFTER_FAILURES); // the reports of the "cifar" jobs
  });

  it(`stops with exit code 2 and one line after ${STOP_AFTER_FAILURES} jobs in a row fail by its own fault, pausing longer after each`, async () => {
    const queue = testQueue();
    const keys = runKeys(queue.name, 'r1');
    cleanups.push(() => deleteKeysWithPrefix(connection, keys.prefix));
    const empty = mkdtempSync(join(tmpdir(), 'gradq-no-data-'));
    cleanups.push(async () => rmSync(empty, { recursive: true, force: true }));
    const data = (shard: number): ShardJob => ({
      v: 5, run: 'r1', step: 0, shard, attempt: 0, dataset: 'mnist', trainSamples: 512, seed: 7, epoch: 0, start: 0, end: 32, cuts: [],
      model: 'mlp:784-16-10', shift: 0, paramsKey: keys.params(0), resultsKey: keys.results, codec: 'none', residualIn: [], residualOut: [],
    }); // prettier-ignore
    for (let shard = 0; shard < STOP_AFTER_FAILURES + 3; shard++)
      await queue.add('shard', data(shard), { jobId: shardJobId('r1', 0, shard, 0) });
    const w = run(['--queue', queue.name, '--data-dir', empty, '--name', 'nodata', '--quiet']);
    const { code, stderr } = await w.done;
    expect(code, stderr).toBe(2);
    const lines = stderr.trim().split('\n');
    expect(lines.filter((l) => l.startsWith('gradq:'))).toEqual([
      expect.stringMatching(
        new RegExp(
          `^gradq: error: worker nodata: ${STOP_AFTER_FAILURES} jobs in a row failed here \\(the last: .*${empty}.*\\); stopping: fix the cause`,
        ),
      ),
    ]);
    expect(lines.at(-1)).toMatch(/^gradq: error: /);
    // One failure report per job taken, at growing intervals (0.5 + 1 + 2 + 4 s between the five).
    const reports = (await connection.lrangeBuffer(keys.results, 0, -1)).map((m) => readResultMessage(m).header);
    expect(reports.map((h) => [h.worker, h.shard])).toEqual(Array.from({ length: STOP_AFTER_FAILURES }, (_, k) => ['nodata', k]));
    const left = (await queue.getWaiting()).length;
    expect(left).toBe(3); // the jobs it did not take are there for healthy workers
  });

  it('with the secret in $GRADQ_SECRET, computes a signed job into a signed result; an unsigned job fails unanswered', async () => {
    const secret = 'a secret of the test, 32 bytes..';
    const signer = new MessageSigner(Buffer.from(secret));
    const queue = testQueue();
    const keys = runKeys(queue.name, 'r2');
    cleanups.push(() => deleteKeysWithPrefix(connection, keys.prefix));
    await connection.set(keys.params(0), encodeParams(new Model('mlp:784-16-10', { seed: 3 }).params, { key: keys.params(0), signer }));
    const data: ShardJob = {
      v: 5, run: 'r2', step: 0, shard: 0, attempt: 0, dataset: 'mnist', trainSamples: 512, seed: 7, epoch: 0, start: 0, end: 32, cuts: [],
      model: 'mlp:784-16-10', shift: 0, paramsKey: keys.params(0), resultsKey: keys.results, codec: 'none', residualIn: [], residualOut: [],
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
    expect(pushed.map((m) => readResultMessage(m, undefined, signer).header)).toEqual((await queue.getJob(good.id ?? ''))?.returnvalue);
  });

  it.each([
    [['--secret-file', '/nonexistent/secret'], {}, 'secret file /nonexistent/secret: cannot open it (ENOENT)'],
    [[], { GRADQ_SECRET: 'hunter2' }, '$GRADQ_SECRET: 7 bytes, a secret needs at least 16 (e.g. openssl rand -hex 32)'],
    [['--redis', 'http://:pw@example:80'], {}, 'Redis URL http://:***@example:80: scheme http: is not redis: or rediss:'],
    [[], { GRADQ_REDIS_URL: 'http://:pw@example:80' }, 'Redis URL http://:***@example:80: scheme http: is not redis: or rediss:'],
    [['--queue', 'a:b'], {}, 'invalid queue "a:b" (use 1-64 letters, digits, _ . -)'],
    [['--name', 'a b'], {}, '--name "a b": use 1-100 printable ASCII characters without spaces'],
  ])('refuses %j %j with exit code 2 and one line', async (args, env, line) => {
    const { code, stderr } = await run(args, env).done;
    expect(code, stderr).toBe(2);
    expect(stderr.trim().split('\n')).toEqual([`gradq: error: ${line}`]);
    expect(stderr).not.toContain('pw@');
    expect(stderr).not.toContain('hunter2');
  });

  it('says in one line, exit code 2, that Redis does not answer (as gradq train does)', async () => {
    const { code, stderr } = await run(['--redis', 'redis://:pw@127.0.0.1:1']).done;
    expect(code, stderr).toBe(2);
    const lines = stderr.trim().split('\n');
    expect(lines.filter((l) => !l.startsWith('worker Redis at redis://:***@127.0.0.1:1 does not answer'))).toEqual([
      'gradq: error: Redis at redis://:***@127.0.0.1:1 does not answer after 5 tries (connect ECONNREFUSED 127.0.0.1:1); check --redis (or $GRADQ_REDIS_URL)',
    ]);
    expect(stderr).not.toContain('pw@');
  });

  it.skipIf(!REDIS_SERVER_ON_PATH)('reports a Redis outage in one line, and one more when it is back', async () => {
    const server = await TestRedisServer.start();
    cleanups.push(() => server.kill());
    const w = run(['--queue', 'outage', '--name', 'w1'], { GRADQ_REDIS_URL: server.url() });
    await until(async () => w.stderr().includes('taking jobs'), `the worker to start; stderr: ${w.stderr()}`);
    await server.kill();
    await new Promise((r) => setTimeout(r, 2500)); // several reconnection attempts of each connection
    await server.restart();
    await until(async () => w.stderr().includes('connected again'), `the worker to reconnect; stderr: ${w.stderr()}`);
    w.child.kill('SIGTERM');
    const { code, stderr } = await w.done;
    expect(code, stderr).toBe(0);
    expect(stderr.trim().split('\n')).toEqual([
      `worker w1 taking jobs from queue "outage" at ${server.url()}`,
      expect.stringMatching(
        new RegExp(`^worker Redis at ${server.url()}: .*(ECONNRESET|ECONNREFUSED|EPIPE|closed).*; retrying with backoff$`),
      ),
      `worker Redis at ${server.url()}: connected again`,
      'worker w1: SIGTERM, closing',
    ]);
  });

  describe.skipIf(!REDIS_SERVER_ON_PATH)('against a Redis with a password', () => {
    let server: TestRedisServer;
    afterEach(async () => {
      await server?.kill();
    });
    it.each([
      ['a wrong password', ':wrong@', ':***@', "the server refused the URL's user or password (WRONGPASS"],
      ['no password', '', '', 'the server needs a password and none was given (NOAUTH'],
    ])('says authentication failed for %s: one line, exit code 2, at once', async (_what, credentials, shown, why) => {
      server = await TestRedisServer.start({ password: 'hunter2' });
      const { code, stderr } = await run([], { GRADQ_REDIS_URL: `redis://${credentials}127.0.0.1:${server.port}` }).done;
      expect(code, stderr).toBe(2);
      expect(stderr.trim().split('\n')).toEqual([
        expect.stringContaining(`gradq: error: Redis at redis://${shown}127.0.0.1:${server.port}: authentication failed: ${why}`),
      ]);
      expect(stderr).not.toContain('hunter2');
    });
  });
});
