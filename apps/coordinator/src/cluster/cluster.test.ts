import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  checkShardJobSignature,
  encodeResultMessage,
  MessageSigner,
  QUEUE_PREFIX,
  validateShardJob,
  type ShardJob,
  type ShardResult,
} from '@gradq/cluster';
import type { Split } from '@gradq/data';
import { Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ClusterTestbed,
  freezeMidRun,
  honestShards as honestShardsOf,
  honestTrainSplit,
  RUN,
  runOver,
  STEPS,
} from '../testing/cluster-fixtures.js';
import { lastJson, runCli, SHARED_DATA, spawnCli, waitFor } from '../testing/run-cli.js';

const bed = new ClusterTestbed('cluster');
const redis = bed.redis;
/** The short run most tests compare: 1024 samples, 2 epochs, 32 steps. */
const SHORT = runOver(1024);
const SHORT_STEPS = 32;
let reference: string;

const honestShards = (job: ShardJob, train: Parameters<typeof honestShardsOf>[2], signer?: MessageSigner) =>
  honestShardsOf(redis, job, train, signer);

beforeAll(async () => {
  reference = await bed.localHash(SHORT);
});

afterAll(() => bed.cleanUp());

describe('gradq train on the cluster', () => {
  it.each([1, 2, 3])('gives the --local params_sha256 with %i workers', async (workers) => {
    const r = await runCli(['train', '--workers', String(workers), '--queue', bed.queue(), ...SHORT]);
    expect(r.code, r.stderr).toBe(0);
    const summary = lastJson(r.stdout);
    expect(summary).toMatchObject({ params_sha256: reference, steps: SHORT_STEPS, applied_steps: SHORT_STEPS, workers, shards: 4 });
    expect(summary.redis).toBe('redis://127.0.0.1:6379');
  });

  it('gives the --local params_sha256 for a convolutional model with augmentation, with 1, 2 and 3 workers', async () => {
    // A small CNN (conv, ReLU, pool, conv same, dense) with shifted images: 1 epoch of 1024 samples, 16 steps.
    const cnn = RUN.map((a) =>
      a === 'mlp:784-32-10' ? 'cnn:1x28x28/conv5x4/relu/pool2/conv3x6same/relu/dense10' : a === '4096' ? '1024' : a === '2' ? '1' : a,
    );
    const args = cnn.map((a, i) => (cnn[i - 1] === '--augment-shift' ? '2' : a));
    const local = await runCli(['train', '--local', ...args]);
    expect(local.code, local.stderr).toBe(0);
    const cnnReference = lastJson(local.stdout).params_sha256;
    const noShift = lastJson((await runCli(['train', '--local', ...cnn])).stdout).params_sha256;
    expect(noShift).not.toBe(cnnReference); // the augmentation changes the run
    for (const workers of [1, 2, 3]) {
      const r = await runCli(['train', '--workers', String(workers), '--queue', bed.queue(), ...args]);
      expect(r.code, r.stderr).toBe(0);
      expect(lastJson(r.stdout)).toMatchObject({ params_sha256: cnnReference, steps: 16, applied_steps: 16, augment_shift: 2, workers });
    }
  });

  it('survives a worker killed mid-run: same params_sha256, no step applied twice', async () => {
    const queue = bed.queue();
    const worker = (): ReturnType<typeof spawnCli> => spawnCli(['worker', '--queue', queue, '--data-dir', SHARED_DATA]);
    // The longer run (128 steps), so that there is time to catch worker a holding a shard.
    const coordinator = spawnCli(['train', '--workers', '0', '--queue', queue, ...RUN]);
    let finished = false;
    void coordinator.done.then(() => (finished = true));
    // Worker a runs alone at first, so an active job is a's: freeze it until it holds one, then start worker b.
    const a = worker();
    await freezeMidRun(redis, queue, a.child, coordinator, 10);
    const b = worker();
    const stalledAt = await bed.publishedStep(queue);
    const killedAt = Date.now();
    a.child.kill('SIGKILL');
    await waitFor('the stalled shard to be recomputed', async () => finished || (await bed.publishedStep(queue)) > stalledAt, 15_000);
    const recoverySeconds = (Date.now() - killedAt) / 1000;
    expect(recoverySeconds).toBeLessThan(12); // BullMQ's default lock alone would take 30 s
    const c = worker();
    const r = await coordinator.done;
    expect(r.code, r.stderr).toBe(0);
    expect(lastJson(r.stdout)).toMatchObject({ params_sha256: await bed.localHash(RUN), applied_steps: STEPS });
    for (const w of [b, c]) w.child.kill('SIGTERM');
    const exits = await Promise.all([b.done, c.done]);
    expect(exits.map((e) => e.code)).toEqual([0, 0]);
  });

  it('resumes from a checkpoint after the coordinator is killed: same params_sha256', async () => {
    const queue = bed.queue();
    const dir = join(bed.tmp, 'resume');
    const args = ['train', '--workers', '1', '--queue', queue, '--checkpoint', dir, '--checkpoint-every', '20', ...RUN];
    const first = spawnCli(args);
    await waitFor(
      'a checkpoint and step 50',
      async () => existsSync(join(dir, 'checkpoint.gradq')) && (await bed.publishedStep(queue)) >= 50,
    );
    first.child.kill('SIGKILL');
    await first.done;
    const second = await runCli([...args, '--resume']);
    expect(second.code, second.stderr).toBe(0);
    const resumedAt = Number(/resuming from .*checkpoint\.gradq at step (\d+)/.exec(second.stderr)?.[1]);
    expect(resumedAt % 20 === 0 && resumedAt >= 40, second.stderr).toBe(true);
    expect(lastJson(second.stdout)).toMatchObject({ params_sha256: await bed.localHash(RUN), applied_steps: STEPS });
  });

  it('rejects NaN, wrong-length and oversized results, ignores duplicates, other steps and stale failure reports, recomputes failed and lost shards, and ends with the same hash', async () => {
    const queue = bed.queue();
    const train = await honestTrainSplit();
    const evil = new Worker<ShardJob, ShardResult[]>(
      queue,
      async (job) => {
        const data = validateShardJob(job.data);
        const results: ShardResult[] = [];
        // Per shard of the job (one or several): what it sends for that shard.
        for (const { grads, result, start } of await honestShards(data, train)) {
          const { shard } = result;
          const first = data.attempt === 0;
          let sent = grads;
          if (first && data.step === 3 && shard === 1) (sent = grads.slice())[5] = Number.NaN;
          if (first && data.step === 5 && shard === 2) sent = grads.subarray(0, grads.length - 1);
          const header = { ...result, step: first && data.step === 9 && shard === 3 ? 8 : data.step };
          if (first && data.step === 7 && shard === 1) {
            // Shard 0 of step 7 is already in: deliver it again, ahead of shard 1.
            const [zero] = await honestShards({ ...data, shard: 0, start: start - result.count, end: start, cuts: [] }, train);
            await redis.rpush(data.resultsKey, encodeResultMessage(zero.result, zero.grads));
          }
          if (first && data.step === 11 && shard === 2) {
            // A failure report for this shard (the job's other shards are answered).
            const failure = { v: 2 as const, run: data.run, step: data.step, shard, attempt: data.attempt, worker: 'evil' };
            await redis.rpush(data.resultsKey, encodeResultMessage({ ...failure, error: 'out of luck' }));
            continue;
          }
          const report = (attempt: number) =>
            encodeResultMessage({ v: 2, run: data.run, step: data.step, shard, attempt, worker: 'evil', error: 'stale' });
          // A report about an attempt nobody waits for, before the result: ignored.
          if (first && data.step === 15 && shard === 1) await redis.rpush(data.resultsKey, report(7));
          await redis.rpush(data.resultsKey, encodeResultMessage(header, sent));
          // A report for a shard that is already in: ignored.
          if (first && data.step === 13 && shard === 0) await redis.rpush(data.resultsKey, report(0));
          // Something far larger than any result for this model, after the result: rejected unread.
          if (first && data.step === 17 && shard === 2) await redis.rpush(data.resultsKey, Buffer.alloc(1 << 20, 0x47));
          results.push(result);
        }
        return results;
      },
      { connection: new Redis('redis://127.0.0.1:6379', { maxRetriesPerRequest: null }), prefix: QUEUE_PREFIX },
    );
    try {
      const r = await runCli(['train', '--workers', '0', '--queue', queue, '--lease-steps', '1', ...SHORT]);
      expect(r.code, r.stderr).toBe(0);
      expect(lastJson(r.stdout)).toMatchObject({
        params_sha256: reference, applied_steps: SHORT_STEPS, results_rejected: 3, duplicates_ignored: 1, jobs_failed: 1, shards_recomputed: 4,
      }); // prettier-ignore
      expect(r.stderr).toMatch(/step 3 shard 1: result rejected \(.*gradient value 5 is NaN\)/);
      expect(r.stderr).toMatch(/step 5 shard 2: result rejected \(.*gradient of 25449 values, expected 25450 values\)/);
      expect(r.stderr).toMatch(/step 17: result rejected \(result message of 1048576 bytes \(at most 167344 for this model\)\)/);
      // A message for another step may be a late duplicate: it is ignored, and the shard recomputed once its job is gone.
      expect(r.stderr).toMatch(/step 9 shard 3: job \S+ is gone without a usable result; recomputing/);
      expect(r.stderr).toMatch(/step 7 shard 0: duplicate result/);
      expect(r.stderr).toMatch(/step 11 shard 2: worker evil failed \("out of luck"\); recomputing/);
      expect(r.stderr).not.toMatch(/stale/); // the reports of steps 13 and 15 changed nothing (and the counts above are exact)
    } finally {
      await evil.close();
    }
  });

  describe('with a shared secret', () => {
    const SECRET = 'f3b1c1c4e0a94f6d8d3b2a7c5e9f0a1b';
    const secretFile = (): string => {
      const file = join(bed.tmp, 'secret');
      writeFileSync(file, `${SECRET}\n`, { mode: 0o600 });
      return file;
    };

    /**
     * A worker that, for every job, first pushes a forged result: a finite zero gradient with the right run, step,
     * shard, attempt and sample count, unsigned (or, at some steps, signed with another secret, or a genuine
     * result changed since it was signed, or a forged failure report), and then the honest result, signed with
     * `signer` when there is one. Without the secret the forgery arrives first and wins.
     */
    function forgingWorker(queue: string, train: Split, signer: MessageSigner | undefined): Worker<ShardJob, ShardResult[]> {
      const stranger = new MessageSigner(Buffer.from('not the run’s secret, but long enough'));
      return new Worker<ShardJob, ShardResult[]>(
        queue,
        async (job) => {
          const data = validateShardJob(job.data);
          checkShardJobSignature(data, signer); // the coordinator signs its jobs (and leaves them unsigned without a secret)
          const shards = await honestShards(data, train, signer);
          for (const { grads, result } of shards) {
            const zero = new Float32Array(grads.length);
            const forged = { ...result, worker: 'forger', lossSum: 0, correct: result.count };
            await redis.rpush(data.resultsKey, encodeResultMessage(forged, zero));
            if (data.step === 4) await redis.rpush(data.resultsKey, encodeResultMessage(forged, zero, stranger));
            if (data.step === 6 && signer) {
              const changed = encodeResultMessage(result, grads, signer);
              changed[changed.length - 100] ^= 0x40; // a gradient byte
              await redis.rpush(data.resultsKey, changed);
            }
            if (data.step === 8) {
              const failure = {
                v: 2 as const,
                run: data.run,
                step: data.step,
                shard: result.shard,
                attempt: data.attempt,
                worker: 'forger',
              };
              await redis.rpush(data.resultsKey, encodeResultMessage({ ...failure, error: 'out of luck' }));
            }
            await redis.rpush(data.resultsKey, encodeResultMessage(result, grads, signer));
          }
          return shards.map((s) => s.result);
        },
        { connection: new Redis('redis://127.0.0.1:6379', { maxRetriesPerRequest: null }), prefix: QUEUE_PREFIX },
      );
    }

    it('rejects forged results pushed ahead of the real ones and ends with the --local params_sha256; without it they win', async () => {
      const train = await honestTrainSplit();
      const signer = new MessageSigner(Buffer.from(SECRET));
      // Without a secret: the forged zero gradients are taken, the real results dropped as duplicates.
      const plainQueue = bed.queue();
      const plain = forgingWorker(plainQueue, train, undefined);
      try {
        const r = await runCli(['train', '--workers', '0', '--queue', plainQueue, '--lease-steps', '1', ...SHORT]);
        expect(r.code, r.stderr).toBe(0);
        expect(lastJson(r.stdout).params_sha256).not.toBe(reference);
      } finally {
        await plain.close();
      }
      // With the secret: every forgery is rejected unread, counted, and the run is exact.
      const queue = bed.queue();
      const forger = forgingWorker(queue, train, signer);
      try {
        const r = await runCli([
          'train',
          '--workers',
          '0',
          '--queue',
          queue,
          '--secret-file',
          secretFile(),
          '--lease-steps',
          '1',
          ...SHORT,
        ]);
        expect(r.code, r.stderr).toBe(0);
        // One forged zero gradient per job, and at steps 4, 6 and 8 one more per shard.
        expect(lastJson(r.stdout)).toMatchObject({
          params_sha256: reference, applied_steps: SHORT_STEPS, results_rejected: 4 * SHORT_STEPS + 3 * 4, duplicates_ignored: 0,
          shards_recomputed: 0, jobs_failed: 0,
        }); // prettier-ignore
        expect(r.stderr).toMatch(/signed with the secret from file .*secret; unsigned results are rejected/);
        expect(r.stderr).toMatch(
          /step 0: result rejected \(result message is not signed \(from a worker without the run’s secret, or forged\)\)/,
        );
        expect(r.stderr).toMatch(/step 4: result rejected \(result message has a bad signature/);
        expect(r.stderr).toMatch(/step 6: result rejected \(result message has a bad signature/);
        expect(r.stderr).not.toContain('out of luck'); // the failure reports were never read
        expect(r.stderr).not.toContain(SECRET);
      } finally {
        await forger.close();
      }
    });

    it('gives the --local params_sha256 with 2 local workers, which get the secret through their environment, not argv', async () => {
      const queue = bed.queue();
      const coordinator = spawnCli(['train', '--workers', '2', '--queue', queue, '--secret-file', secretFile(), ...RUN]);
      await waitFor('step 10', async () => (await bed.publishedStep(queue)) >= 10);
      const pid = coordinator.child.pid ?? 0;
      const children = readdirSync(`/proc/${pid}/task`).flatMap((t) =>
        readFileSync(`/proc/${pid}/task/${t}/children`, 'utf8').trim().split(/\s+/).filter(Boolean),
      );
      expect(children).toHaveLength(2);
      for (const child of children) {
        const argv = readFileSync(`/proc/${child}/cmdline`, 'utf8');
        expect(argv).toContain('worker');
        expect(argv).not.toContain(SECRET);
        expect(argv).not.toContain('secret');
        expect(readFileSync(`/proc/${child}/environ`, 'utf8').split('\0')).toContain(`GRADQ_SECRET=${SECRET}`);
      }
      const r = await coordinator.done;
      expect(r.code, r.stderr).toBe(0);
      expect(lastJson(r.stdout)).toMatchObject({
        params_sha256: await bed.localHash(RUN),
        applied_steps: STEPS,
        workers: 2,
        results_rejected: 0,
      });
    });

    it('refuses a secret file that cannot be used before any work, with one line and exit code 2', async () => {
      const short = join(bed.tmp, 'short-secret');
      writeFileSync(short, 'hunter2\n');
      const r = await runCli(['train', '--queue', bed.queue(), '--secret-file', short, ...RUN]);
      expect(r.code).toBe(2);
      expect(r.stderr.trim().split('\n')).toEqual([
        `gradq: error: secret file ${short}: 7 bytes, a secret needs at least 16 (e.g. openssl rand -hex 32)`,
      ]);
    });
  });

  it('says clearly that Redis does not answer, without its password, and exits 2', async () => {
    const r = await runCli(['train', '--redis', 'redis://:hunter2@127.0.0.1:1', '--queue', bed.queue(), ...RUN]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/Redis at redis:\/\/:\*\*\*@127\.0\.0\.1:1 does not answer/);
    expect(r.stderr).not.toContain('hunter2');
    expect(r.stderr.split('\n').filter((l) => l.startsWith('gradq:'))).toEqual([
      'gradq: error: Redis at redis://:***@127.0.0.1:1 does not answer after 5 tries (connect ECONNREFUSED 127.0.0.1:1); check --redis, or train with --local',
    ]);
  });

  it('refuses a database the server does not have at once: one line, exit 2', async () => {
    const r = await runCli(['train', '--redis', 'redis://127.0.0.1:6379/99', '--queue', bed.queue(), ...RUN]);
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr.trim().split('\n')).toEqual([
      'gradq: error: Redis at redis://127.0.0.1:6379/99: the server has no database 99 (ERR DB index is out of range); use one it has (…/0 to …/15 by default); check --redis (or $GRADQ_REDIS_URL)',
    ]);
  });
});
