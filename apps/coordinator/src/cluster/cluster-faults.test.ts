import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import { encodeResultMessage, QUEUE_PREFIX, validateShardJob, type ShardJob, type ShardResult } from '@gradq/cluster';
import { REDIS_SERVER_ON_PATH, TestRedisServer } from '@gradq/cluster/testing';
import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClusterTestbed, honestShards, honestTrainSplit, publishedStep, RUN, STEPS } from '../testing/cluster-fixtures.js';
import { lastJson, runCli, SHARED_DATA, spawnCli, waitFor } from '../testing/run-cli.js';

// The faults of issue 11 that used to end a run or leave it behind, each against real processes: a worker that
// fails every job, Redis restarted empty, a burst of forged messages, no worker at all, SIGTERM and SIGINT.

const bed = new ClusterTestbed('faults');
const redis = bed.redis;
const tmp = bed.tmp;
let reference: string;

/** The lines gradq ends with (`gradq: …`). */
function gradqLines(stderr: string): string[] {
  return stderr.split('\n').filter((l) => l.startsWith('gradq:'));
}

/** Starts `gradq worker` on `queue` under `name`; `more` adds flags. */
function worker(queue: string, name: string, more: string[] = ['--data-dir', SHARED_DATA]): ReturnType<typeof spawnCli> {
  return spawnCli(['worker', '--queue', queue, '--name', name, '--quiet', ...more]);
}

/** SIGTERM (after SIGCONT, should it be stopped) to each worker still running, and their exits. */
async function stopAll(workers: Array<ReturnType<typeof spawnCli>>): Promise<void> {
  for (const w of workers) {
    if (w.child.exitCode !== null || w.child.signalCode !== null) continue;
    w.child.kill('SIGCONT');
    w.child.kill('SIGTERM');
  }
  await Promise.all(workers.map((w) => w.done));
}

/** The run's queued jobs on `queue` (waiting, delayed, prioritized). */
async function queuedJobsOf(queue: string, runId: string): Promise<string[]> {
  const q = new Queue(queue, { connection: redis, prefix: QUEUE_PREFIX });
  try {
    const jobs = await q.getJobs(['waiting', 'delayed', 'prioritized']);
    return jobs.map((j) => j.id ?? '').filter((id) => id.startsWith(`${runId}.`));
  } finally {
    await q.close();
  }
}

/** The run id a coordinator's first line names. */
function runIdOf(stderr: string): string {
  const id = /^run (\S+) on queue/m.exec(stderr)?.[1];
  if (id === undefined) throw new Error(`no run id in ${stderr}`);
  return id;
}

beforeAll(async () => {
  reference = await bed.localHash(RUN);
});

afterAll(() => bed.cleanUp());

describe('gradq train on the cluster, under faults', () => {
  it('ends with the --local hash beside a worker that fails every job, which is reported once and steps aside', async () => {
    const queue = bed.queue();
    const empty = mkdtempSync(join(tmp, 'no-data-'));
    // The misconfigured worker is alone at first, so that it surely takes a job (joining mid-run, it could come
    // too late on a loaded machine: the run is short); the healthy ones join once its failure was reported.
    const coordinator = spawnCli(['train', '--workers', '0', '--queue', queue, ...RUN]);
    let log = '';
    coordinator.child.stderr?.on('data', (d: Buffer) => (log += d.toString()));
    const bad = worker(queue, 'nodata', ['--data-dir', empty]);
    await waitFor('the failure of worker nodata', () => log.includes('worker nodata failed'));
    const healthy = [worker(queue, 'h1'), worker(queue, 'h2')];
    const r = await coordinator.done;
    expect(r.code, r.stderr).toBe(0);
    expect(lastJson(r.stdout)).toMatchObject({ params_sha256: reference, applied_steps: STEPS });
    expect(lastJson(r.stdout).jobs_failed).toBeGreaterThan(0);
    expect(r.stderr.split('\n').filter((l) => l.includes('nodata'))).toEqual([
      expect.stringMatching(
        /^step \d+ shard \d: worker nodata failed \(".*mnist.*"\); recomputing \(its next failures are counted, not logged/,
      ),
    ]);
    await stopAll([...healthy, bad]);
  });

  it('is not ended by a burst of forged failure reports, malformed results and garbage for one shard: --local hash', async () => {
    const queue = bed.queue();
    const train = await honestTrainSplit();
    const connection = new Redis('redis://127.0.0.1:6379', { maxRetriesPerRequest: null });
    const forger = new Worker<ShardJob, ShardResult[]>(
      queue,
      async (job) => {
        const data = validateShardJob(job.data);
        const shards = await honestShards(redis, data, train);
        for (const { grads, result } of shards) {
          if (data.step === 6 && result.shard === 1 && data.attempt === 0) {
            // 20 of each, ahead of the honest result: 8 used to end the run.
            const nan = grads.slice();
            nan[0] = Number.NaN;
            const burst: Buffer[] = [];
            for (let attempt = 0; attempt < 20; attempt++) {
              const { run, step } = data;
              burst.push(encodeResultMessage({ v: 2, run, step, shard: result.shard, attempt, worker: 'forger', error: 'forged' }));
              burst.push(encodeResultMessage({ ...result, attempt }, nan), Buffer.from('not a result message'));
            }
            await redis.rpush(data.resultsKey, ...burst);
          }
          await redis.rpush(data.resultsKey, encodeResultMessage(result, grads));
        }
        return shards.map((s) => s.result);
      },
      { connection, prefix: QUEUE_PREFIX },
    );
    try {
      const r = await runCli(['train', '--workers', '0', '--queue', queue, '--lease-steps', '1', ...RUN]);
      expect(r.code, r.stderr).toBe(0);
      const summary = lastJson(r.stdout);
      expect(summary).toMatchObject({ params_sha256: reference, applied_steps: STEPS });
      // A forged report asks for a new attempt only once the attempt it names was taken (here the forger takes
      // each new attempt at once, so that is timing): never more attempts than forged reports.
      expect(summary.shards_recomputed).toBeGreaterThanOrEqual(1);
      expect(summary.shards_recomputed).toBeLessThanOrEqual(20);
      expect(summary.results_rejected).toBeGreaterThanOrEqual(40); // 20 NaN results, 20 unreadable messages, maybe reports
      expect(r.stderr).toContain('step 6: more results rejected; counted (results_rejected), not logged, for the rest of the step');
    } finally {
      await forger.close();
      await connection.quit();
    }
  });

  it('gives up when no worker answers for --give-up-after: exit code 4, one line, the step’s jobs and keys removed', async () => {
    const queue = bed.queue();
    const r = await runCli(['train', '--workers', '0', '--queue', queue, '--give-up-after', '2', ...RUN]);
    expect(r.code, r.stderr).toBe(4);
    expect(gradqLines(r.stderr)).toEqual([
      expect.stringMatching(
        new RegExp(
          `^gradq: step 0: no valid result for [2-9] s and no responsive worker \\(0 workers connected\\); gave up \\(start workers: gradq worker --queue ${queue}; or see their logs\\); no --checkpoint, so the steps done are not kept$`,
        ),
      ),
    ]);
    expect(await redis.keys(`${QUEUE_PREFIX}:${queue}:run:*`)).toEqual([]);
    expect(await queuedJobsOf(queue, runIdOf(r.stderr))).toEqual([]);
  });

  it('on SIGTERM, having reported its stopped workers as unresponsive: checkpoint, jobs and keys removed, exit 143; --resume ends with the --local hash', async () => {
    const queue = bed.queue();
    const dir = join(tmp, 'sigterm');
    const args = ['--queue', queue, '--checkpoint', dir, '--checkpoint-every', '1000', ...RUN];
    const coordinator = spawnCli(['train', '--workers', '0', ...args]);
    let stderr = '';
    coordinator.child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    const workers = [worker(queue, 'frozen-a'), worker(queue, 'frozen-b')];
    await waitFor('step 30', async () => (await publishedStep(redis, queue)) >= 30);
    for (const w of workers) w.child.kill('SIGSTOP');
    const unresponsive =
      /step (\d+): waiting \d+ s for shards [\d, ]+; 2 workers connected, 2 unresponsive \(no answer for 10 s or more\): frozen-a, frozen-b/;
    await waitFor('the stopped workers reported as unresponsive', () => unresponsive.test(stderr), 30_000);
    const stalled = Number(unresponsive.exec(stderr)?.[1]);
    coordinator.child.kill('SIGTERM');
    const r = await coordinator.done;
    expect(r.code, r.stderr).toBe(143);
    const checkpoint = join(dir, 'checkpoint.gradq');
    expect(gradqLines(r.stderr)).toEqual([
      `gradq: interrupted by SIGTERM before step ${stalled}; checkpoint written to ${checkpoint}: the same command with --resume continues at step ${stalled}`,
    ]);
    // Before the stopped workers go on (they may still push the result of a job they hold).
    expect(await redis.keys(`${QUEUE_PREFIX}:${queue}:run:*`)).toEqual([]);
    expect(await queuedJobsOf(queue, runIdOf(r.stderr))).toEqual([]);
    await stopAll(workers);
    const resumed = await runCli(['train', '--workers', '1', ...args, '--resume']);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.stderr).toContain(`resuming from ${checkpoint} at step ${stalled}`);
    expect(lastJson(resumed.stdout)).toMatchObject({ params_sha256: reference, applied_steps: STEPS });
  });

  it('on SIGINT: stops its local workers, removes the run’s keys and jobs, one line, exit 130', async () => {
    const queue = bed.queue();
    const longRun = RUN.map((a) => (a === '4096' ? '16384' : a));
    const coordinator = spawnCli(['train', '--workers', '2', '--queue', queue, ...longRun]);
    await waitFor('step 20', async () => (await publishedStep(redis, queue)) >= 20);
    const pids = execFileSync('pgrep', ['-P', String(coordinator.child.pid)], { encoding: 'utf8' })
      .trim()
      .split('\n')
      .map(Number);
    expect(pids).toHaveLength(2);
    coordinator.child.kill('SIGINT');
    const r = await coordinator.done;
    expect(r.code, r.stderr).toBe(130);
    const lines = r.stderr.trim().split('\n');
    expect(
      lines.filter((l) => !/^(run \S+ on queue|epoch \d|θ and the results of workers on this machine travel through)/.test(l)),
    ).toEqual([expect.stringMatching(/^gradq: interrupted by SIGINT before step \d+; no --checkpoint, so the steps done are not kept$/)]);
    expect(await redis.keys(`${QUEUE_PREFIX}:${queue}:run:*`)).toEqual([]);
    expect(await queuedJobsOf(queue, runIdOf(r.stderr))).toEqual([]);
    for (const pid of pids) expect(() => process.kill(pid, 0), `local worker ${pid} still runs`).toThrow();
  });
});

describe.skipIf(!REDIS_SERVER_ON_PATH)('gradq train on a Redis of its own that restarts', () => {
  it('ends with the --local hash when Redis restarts empty while a step waits: θ is written again; the outage is one line per connection', async () => {
    const server = await TestRedisServer.start();
    const own = new Redis(server.url(), { maxRetriesPerRequest: null });
    own.on('error', () => undefined);
    const queue = `test-${randomUUID().slice(0, 8)}`;
    const workers: Array<ReturnType<typeof spawnCli>> = [];
    const start = (name: string): void =>
      void workers.push(
        spawnCli(['worker', '--queue', queue, '--name', name, '--data-dir', SHARED_DATA, '--quiet'], { GRADQ_REDIS_URL: server.url() }),
      );
    try {
      const coordinator = spawnCli(['train', '--workers', '0', '--redis', server.url(), '--queue', queue, ...RUN]);
      start('before-1');
      start('before-2');
      await waitFor('step 30', async () => (await publishedStep(own, queue)) >= 30);
      // The workers that hold θ could compute the step from their copy: fresh ones after the restart cannot.
      for (const w of workers.splice(0)) {
        w.child.kill('SIGKILL');
        await w.done;
      }
      await server.kill();
      await new Promise((r) => setTimeout(r, 1500));
      await server.restart();
      start('after-1');
      start('after-2');
      const r = await coordinator.done;
      expect(r.code, r.stderr).toBe(0);
      expect(lastJson(r.stdout)).toMatchObject({ params_sha256: reference, applied_steps: STEPS });
      expect(r.stderr).toMatch(/step \d+: θ was gone from Redis \(restarted empty\?\); written again/);
      // No stacks or error dumps: one line when a connection goes down, one when it is back.
      expect(r.stderr).not.toMatch(/^\s+at |^Error:|errno:/m);
      expect(r.stderr.split('\n').filter((l) => /ECONNREFUSED|connection lost/.test(l)).length).toBeLessThanOrEqual(2);
    } finally {
      await stopAll(workers);
      await own.quit().catch(() => own.disconnect());
      await server.kill();
    }
  });
});
