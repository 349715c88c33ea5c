import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deleteKeysWithPrefix, QUEUE_PREFIX } from '@gradq/cluster';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freezeHoldingShard, publishedStep as publishedStepOf, RUN, STEPS } from '../testing/cluster-fixtures.js';
import { expectInputError, killLeftoverChildren, lastJson, runCli, SHARED_DATA, spawnCli, waitFor } from '../testing/run-cli.js';

// --compress on the cluster (issue 13): the promise holds for every codec: --local and 1, 2, 3 workers give the
// same bits, a worker killed mid-run and a coordinator resumed from a checkpoint change nothing (int8 keeps a
// residual per logical shard, in Redis and in the checkpoint).
const redis = new Redis('redis://127.0.0.1:6379', { maxRetriesPerRequest: null });
const queues: string[] = [];
let tmp: string;
const references = new Map<string, Record<string, unknown>>();

function queueName(): string {
  const q = `test-${randomUUID().slice(0, 8)}`;
  queues.push(q);
  return q;
}
const publishedStep = (queue: string): Promise<number> => publishedStepOf(redis, queue);

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'gradq-compress-'));
  for (const codec of ['none', 'fp16', 'int8']) {
    const local = await runCli(['train', '--local', ...RUN, '--compress', codec]);
    expect(local.code, local.stderr).toBe(0);
    references.set(codec, lastJson(local.stdout));
  }
});

afterAll(async () => {
  killLeftoverChildren();
  for (const q of queues) {
    await new Queue(q, { connection: redis, prefix: QUEUE_PREFIX }).obliterate({ force: true });
    await deleteKeysWithPrefix(redis, `${QUEUE_PREFIX}:${q}:`);
  }
  await redis.quit();
  rmSync(tmp, { recursive: true, force: true });
});

const hash = (codec: string): unknown => references.get(codec)?.params_sha256;

describe('gradq train --compress', () => {
  it('changes the bits with each codec (so that the tests below can fail)', () => {
    expect(new Set(['none', 'fp16', 'int8'].map(hash)).size).toBe(3);
  });

  it.each([
    ['int8', 1],
    ['int8', 2],
    ['int8', 3],
    ['fp16', 1],
    ['fp16', 2],
    ['fp16', 3],
  ])('%s gives the --local params_sha256 with %i workers, and measures the bytes it reports', async (codec, workers) => {
    const r = await runCli(['train', '--workers', String(workers), '--queue', queueName(), ...RUN, '--compress', codec]);
    expect(r.code, r.stderr).toBe(0);
    const summary = lastJson(r.stdout);
    expect(summary).toMatchObject({ params_sha256: hash(codec), applied_steps: STEPS, compress: codec, results_rejected: 0 });
    const reported = summary.bytes_per_step as { gradients_up: number };
    expect(summary.gradients_up_measured).toBe(reported.gradients_up); // every shard non-empty: K messages of one shard a step
    expect(reported).toEqual(references.get(codec)?.bytes_per_step);
  });

  it('int8 sends at most 0.27× the gradient bytes of none, fp16 half (bytes_per_step of --json)', () => {
    const up = (codec: string): number => (references.get(codec)?.bytes_per_step as { gradients_up: number }).gradients_up;
    const params = (references.get('none')?.bytes_per_step as { params_down: number }).params_down;
    expect(up('none')).toBe(params); // 4 shards × 25,450 float32 values, both ways
    expect(up('int8') / up('none')).toBeLessThanOrEqual(0.27);
    expect(up('fp16') / up('none')).toBe(0.5);
  });

  it('int8 survives a worker killed mid-run: same params_sha256 (the residuals are the shards’, not the worker’s)', async () => {
    const queue = queueName();
    const worker = (): ReturnType<typeof spawnCli> => spawnCli(['worker', '--queue', queue, '--data-dir', SHARED_DATA]);
    const longRun = [...RUN.map((a) => (a === '4096' ? '16384' : a)), '--compress', 'int8'];
    const local = await runCli(['train', '--local', ...longRun]);
    const longReference = lastJson(local.stdout).params_sha256;
    const coordinator = spawnCli(['train', '--workers', '0', '--queue', queue, ...longRun]);
    const a = worker();
    await waitFor('step 30', async () => (await publishedStep(queue)) >= 30);
    let finished = false;
    void coordinator.done.then(() => (finished = true));
    const jobs = new Queue(queue, { connection: redis, prefix: QUEUE_PREFIX });
    await freezeHoldingShard(a.child, jobs, () => finished);
    await jobs.close();
    const b = worker();
    a.child.kill('SIGKILL');
    const c = worker();
    const r = await coordinator.done;
    expect(r.code, r.stderr).toBe(0);
    expect(lastJson(r.stdout)).toMatchObject({ params_sha256: longReference, applied_steps: 4 * STEPS });
    for (const w of [b, c]) w.child.kill('SIGTERM');
    await Promise.all([b.done, c.done]);
  });

  it.each([
    ['on the cluster', ['--workers', '1']],
    ['in-process', ['--local']],
  ])('int8 resumes from a checkpoint (with the residuals) after the coordinator is killed %s: same params_sha256', async (_, how) => {
    const dir = join(tmp, `resume-${how[0]}`);
    const longRun = [...RUN.map((a) => (a === '4096' ? '16384' : a)), '--compress', 'int8'];
    const local = await runCli(['train', '--local', ...longRun]);
    const longReference = lastJson(local.stdout).params_sha256;
    const queue = how[0] === '--local' ? [] : ['--queue', queueName()];
    const args = ['train', ...how, ...queue, '--checkpoint', dir, '--checkpoint-every', '40', ...longRun];
    const first = spawnCli(args);
    await waitFor('a checkpoint', () => existsSync(join(dir, 'checkpoint.gradq')));
    first.child.kill('SIGKILL');
    await first.done;
    const second = await runCli([...args, '--resume']);
    expect(second.code, second.stderr).toBe(0);
    const resumedAt = Number(/resuming from .*checkpoint\.gradq at step (\d+)/.exec(second.stderr)?.[1]);
    expect(resumedAt > 0 && resumedAt < 4 * STEPS, second.stderr).toBe(true);
    expect(lastJson(second.stdout)).toMatchObject({ params_sha256: longReference, applied_steps: 4 * STEPS });
  });

  it('int8 on SIGTERM writes a checkpoint with the residuals of the steps done; --resume ends with the --local hash', async () => {
    const dir = join(tmp, 'sigterm');
    const longRun = [...RUN.map((a) => (a === '4096' ? '16384' : a)), '--compress', 'int8'];
    const local = await runCli(['train', '--local', ...longRun]);
    const queue = queueName();
    const args = ['train', '--queue', queue, '--checkpoint', dir, '--checkpoint-every', '100000', ...longRun];
    const first = spawnCli([args[0], '--workers', '2', ...args.slice(1)]);
    await waitFor('step 60', async () => (await publishedStep(queue)) >= 60);
    first.child.kill('SIGTERM');
    const stopped = await first.done;
    expect(stopped.code, stopped.stderr).toBe(143);
    const at = Number(/checkpoint written to .*continues at step (\d+)/.exec(stopped.stderr)?.[1]);
    expect(at >= 60 && at < 4 * STEPS, stopped.stderr).toBe(true);
    const second = await runCli([args[0], '--workers', '1', ...args.slice(1), '--resume']);
    expect(second.code, second.stderr).toBe(0);
    expect(second.stderr).toContain(`at step ${at}`);
    expect(lastJson(second.stdout)).toMatchObject({ params_sha256: lastJson(local.stdout).params_sha256, applied_steps: 4 * STEPS });
  });

  it('refuses --compress with --sync local:H, and an unknown codec, as bad input', async () => {
    const out = join(tmp, 'refused.gradq');
    await expectInputError(['train', '--local', ...RUN, '--sync', 'local:4', '--compress', 'int8'], /--compress int8 .*--sync sync/, out);
    await expectInputError(['train', '--local', ...RUN, '--compress', 'int4'], /int4/, out);
  });
});
