import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { encodeResultMessage, QUEUE_PREFIX, validateRoundJob } from '@gradq/cluster';
import { Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { ClusterTestbed, freezeMidRun, honestRound, honestTrainSplit } from '../testing/cluster-fixtures.js';
import { lastJson, runCli, SHARED_DATA, spawnCli, waitFor } from '../testing/run-cli.js';

// --sync local:H on the cluster (issue 13, item 2): the promise (params_sha256 depends on seed and shard count only)
// for local SGD rounds, under worker loss, a coordinator restarted with --resume, and bad round results.

const bed = new ClusterTestbed('lsgd');
const redis = bed.redis;

/**
 * A small local SGD run: 600 samples in batches of 64 (10 steps an epoch, the last of 24 samples), 4 shards,
 * rounds of 4 steps (first steps 0, 4, 8, then 10, 14, 18: an epoch's last round is shorter), Adam (two state
 * buffers a replica).
 */
const SMALL = [
  '--data-dir', SHARED_DATA, '--model', 'mlp:784-32-10', '--train-samples', '600', '--epochs', '2', '--shards', '4',
  '--batch', '64', '--augment-shift', '1', '--seed', '3', '--sync', 'local:4', '--json',
]; // prettier-ignore
/** A longer one (128 steps, 32 rounds), for the faults. */
const LONG = SMALL.map((a) => (a === '600' ? '4096' : a));

/** The --local params_sha256 of `args` (computed once). */
const reference = (args: readonly string[]): Promise<string> => bed.localHash(args);

/** SMALL's bytes a global step: 4 replicas × (Δ + Adam's 2 state buffers) × 25,450 float32, 3 rounds an epoch of 10 steps. */
const SMALL_BYTES_PER_STEP = (4 * 3 * 4 * 25_450 * 3) / 10;

afterAll(() => bed.cleanUp());

describe('gradq train --sync local:H on the cluster', () => {
  it('local:4 is not the synchronous run (the mode changes the bits it must keep)', async () => {
    const sync = await reference(SMALL.filter((a, i) => a !== '--sync' && SMALL[i - 1] !== '--sync'));
    expect(await reference(SMALL)).not.toBe(sync);
  });

  // Every worker count for the plain recipe; for the other two, the counts where replicas share workers unevenly.
  it.each([
    ['avg', [1, 2, 3], []],
    ['nesterov', [2, 3], ['--outer', 'nesterov']],
    ['avg, plain SGD (no replica state)', [2, 3], ['--optimizer', 'sgd', '--lr', '0.1']],
  ])('gives the --local params_sha256 (outer %s) with %j workers', async (_name, counts, more) => {
    const args = [...SMALL, ...more];
    const expected = await reference(args);
    for (const workers of counts) {
      const r = await runCli(['train', '--workers', String(workers), '--queue', bed.queue(), ...args]);
      expect(r.code, r.stderr).toBe(0);
      expect(lastJson(r.stdout), `${workers} workers`).toMatchObject({
        params_sha256: expected, steps: 20, applied_steps: 20, sync: 'local:4', outer_steps: 6, workers, shards: 4, results_rejected: 0,
      }); // prettier-ignore
      // What the coordinator received is what bytes_per_step computes (Δ and the states, per global step).
      const measured = lastJson(r.stdout).gradients_up_measured;
      expect(measured).toBeGreaterThan(0);
      expect(measured).toBe((lastJson(r.stdout).bytes_per_step as { gradients_up: number }).gradients_up);
    }
  });

  it('reports the bytes a round moves per global step: Δ and the replica state up, θ and the state down', async () => {
    const adam = (await bed.local(SMALL)).bytes_per_step;
    expect(adam).toEqual({ params_down: SMALL_BYTES_PER_STEP, gradients_up: SMALL_BYTES_PER_STEP, residuals: 0 });
    const sgd = (await bed.local([...SMALL, '--optimizer', 'sgd', '--lr', '0.1'])).bytes_per_step;
    expect(sgd).toMatchObject({ gradients_up: SMALL_BYTES_PER_STEP / 3 }); // no state buffers: Δ alone
  });

  it('gives the --local params_sha256 when a round has replicas that take no step (a last round of one batch of 2 samples)', async () => {
    // 578 samples: 9 batches of 64 and one of 2; local:3 makes rounds 0-2, 3-5, 6-8 and 9, whose shards 2 and 3 are empty.
    const args = [...SMALL.map((a) => (a === '600' ? '578' : a === 'local:4' ? 'local:3' : a))];
    const r = await runCli(['train', '--workers', '2', '--queue', bed.queue(), ...args]);
    expect(r.code, r.stderr).toBe(0);
    expect(lastJson(r.stdout)).toMatchObject({ params_sha256: await reference(args), outer_steps: 8, applied_steps: 20 });
  });

  it('signs round jobs, θ, the replicas’ states and the results with --secret-file: 2 local workers give the --local params_sha256', async () => {
    const file = join(bed.tmp, 'secret');
    writeFileSync(file, 'a secret for the local SGD test, long enough\n', { mode: 0o600 });
    const r = await runCli(['train', '--workers', '2', '--queue', bed.queue(), '--secret-file', file, ...SMALL]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain('jobs, θ and results are signed with the secret from');
    expect(lastJson(r.stdout)).toMatchObject({ params_sha256: await reference(SMALL), results_rejected: 0 });
  });

  it('gives up when no worker answers a round for --give-up-after: exit 4, one line, the keys removed', async () => {
    const queue = bed.queue();
    const r = await runCli(['train', '--workers', '0', '--queue', queue, '--give-up-after', '2', ...SMALL]);
    expect(r.code, r.stderr).toBe(4);
    expect(r.stderr.split('\n').filter((l) => l.startsWith('gradq:'))).toEqual([
      expect.stringMatching(/^gradq: step 0: no valid result for [2-9] s and no responsive worker \(0 workers connected\); gave up/),
    ]);
    expect(await redis.keys(`${QUEUE_PREFIX}:${queue}:run:*`)).toEqual([]);
  });

  it('survives a worker SIGKILLed mid-round: its replica is recomputed by another, same params_sha256', async () => {
    const queue = bed.queue();
    const expected = await reference(LONG);
    const worker = (): ReturnType<typeof spawnCli> => spawnCli(['worker', '--queue', queue, '--data-dir', SHARED_DATA, '--quiet']);
    const coordinator = spawnCli(['train', '--workers', '0', '--queue', queue, ...LONG]);
    const a = worker();
    await freezeMidRun(redis, queue, a.child, coordinator, 20);
    const b = worker();
    a.child.kill('SIGKILL');
    const r = await coordinator.done;
    expect(r.code, r.stderr).toBe(0);
    expect(lastJson(r.stdout)).toMatchObject({ params_sha256: expected, applied_steps: 128 });
    b.child.kill('SIGTERM');
    expect((await b.done).code).toBe(0);
  });

  it('resumes from a checkpoint after the coordinator is SIGKILLed mid-run: same params_sha256', async () => {
    const queue = bed.queue();
    const dir = join(bed.tmp, 'resume');
    const args = ['train', '--workers', '1', '--queue', queue, '--checkpoint', dir, '--checkpoint-every', '20', ...LONG];
    const first = spawnCli(args);
    await waitFor(
      'a checkpoint and step 50',
      async () => existsSync(join(dir, 'checkpoint.gradq')) && (await bed.publishedStep(queue)) >= 50,
    );
    first.child.kill('SIGKILL');
    await first.done;
    const second = await runCli([...args, '--resume']);
    expect(second.code, second.stderr).toBe(0);
    // Checkpoints are written at the end of the round that passes a multiple of 20: rounds end at multiples of 4.
    const resumedAt = Number(/resuming from .*checkpoint\.gradq at step (\d+)/.exec(second.stderr)?.[1]);
    expect(resumedAt % 4 === 0 && resumedAt >= 40 && resumedAt < 128, second.stderr).toBe(true);
    expect(lastJson(second.stdout)).toMatchObject({ params_sha256: await reference(LONG), applied_steps: 128 });
  });

  it('rejects round results of the wrong size, with NaN in Δ or in the state, or claiming other work; ignores duplicates and other rounds; same hash', async () => {
    const queue = bed.queue();
    const train = await honestTrainSplit();
    // An honest worker that, for attempt 0 of some replicas, pushes something bad first.
    const evil = new Worker(
      queue,
      async (job) => {
        const data = validateRoundJob(job.data);
        const key = data.resultsKey;
        // One external worker: a job carries all 4 replicas (retries one each); each is answered in turn.
        const answers = await honestRound(redis, data, train);
        for (const { result: r, payload } of answers) {
          const honest = encodeResultMessage(r, payload);
          const bad: Buffer[] = [];
          if (r.attempt === 0) {
            const n = payload.length / 3; // Δ and Adam's two buffers
            if (r.step === 4 && r.shard === 1) bad.push(encodeResultMessage(r, withValue(payload, 5, Number.NaN)));
            if (r.step === 8 && r.shard === 2) bad.push(encodeResultMessage(r, payload.subarray(0, payload.length - 1)));
            if (r.step === 10 && r.shard === 0) bad.push(encodeResultMessage(r, withValue(payload, 2 * n + 7, Number.POSITIVE_INFINITY)));
            if (r.step === 14 && r.shard === 3) bad.push(encodeResultMessage({ ...r, stateT: r.stateT + 1 }, payload));
            if (r.step === 18 && r.shard === 1) {
              // Only the message for another round: ignored (counted late), then the replica is recomputed once its job is gone.
              await redis.rpush(key, encodeResultMessage({ ...r, step: 14 }, payload));
              continue;
            }
          }
          await redis.rpush(key, ...bad, honest);
          if (r.attempt === 0 && r.step === 0 && r.shard === 2) await redis.rpush(key, honest); // a duplicate
        }
        return answers.map((a) => a.result);
      },
      { connection: new Redis('redis://127.0.0.1:6379', { maxRetriesPerRequest: null }), prefix: QUEUE_PREFIX },
    );
    try {
      // Round jobs (not round leases, whose results go through the same checks: RoundGather).
      const r = await runCli(['train', '--workers', '0', '--queue', queue, '--lease-steps', '1', ...SMALL]);
      expect(r.code, r.stderr).toBe(0);
      expect(lastJson(r.stdout)).toMatchObject({
        params_sha256: await reference(SMALL), applied_steps: 20, results_rejected: 4, duplicates_ignored: 1, shards_recomputed: 5,
      }); // prettier-ignore
      expect(lastJson(r.stdout).late_results_ignored).toBeGreaterThanOrEqual(1);
      expect(r.stderr).toMatch(/step 4 shard 1: result rejected \(round result from "evil": gradient value 5 is NaN\); recomputing/);
      expect(r.stderr).toMatch(
        /step 8 shard 2: result rejected \(round result from "evil": gradient of 76349 values, expected 76350 values\)/,
      );
      expect(r.stderr).toMatch(/step 10 shard 0: result rejected \(round result from "evil": gradient value 50907 is Infinity\)/);
      expect(r.stderr).toMatch(/step 14 shard 3: result rejected \(round result: stateT is 19, expected 18\)/);
      expect(r.stderr).toMatch(/step 18 shard 1: job \S+ is gone without a usable result; recomputing/);
      expect(r.stderr).toMatch(/step 0 shard 2: duplicate result from "evil" ignored/);
    } finally {
      await evil.close();
    }
  });
});

/** A copy of `values` with values[i] = v. */
function withValue(values: Float32Array, i: number, v: number): Float32Array {
  const copy = values.slice();
  copy[i] = v;
  return copy;
}
