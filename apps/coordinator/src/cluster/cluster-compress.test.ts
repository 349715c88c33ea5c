import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { QUEUE_PREFIX } from '@gradq/cluster';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClusterTestbed, freezeMidRun, runOver } from '../testing/cluster-fixtures.js';
import { expectInputError, lastJson, runCli, SHARED_DATA, spawnCli, waitFor } from '../testing/run-cli.js';

// --compress on the cluster (issue 13): the promise holds for every codec: --local and 1, 2, 3 workers give the
// same bits, a worker killed mid-run and a coordinator resumed from a checkpoint change nothing (int8 keeps a
// residual per logical shard, in Redis and in the checkpoint), and a residual lost from Redis ends the run.
const bed = new ClusterTestbed('compress');
const CODECS = ['none', 'fp16', 'int8'];
/** 1024 samples, 2 epochs: 32 steps, every shard non-empty. */
const SHORT = runOver(1024);
const SHORT_STEPS = 32;
/** 2048 samples: 64 steps, for the faults (time to catch a worker mid-run, a checkpoint before the end). */
const LONG = [...runOver(2048), '--compress', 'int8'];
const LONG_STEPS = 64;
const summary = (codec: string): Promise<Record<string, unknown>> => bed.local([...SHORT, '--compress', codec]);
const hash = async (codec: string): Promise<unknown> => (await summary(codec)).params_sha256;

beforeAll(async () => {
  for (const codec of CODECS) await summary(codec);
});

afterAll(() => bed.cleanUp());

describe('gradq train --compress', () => {
  it('changes the bits with each codec (so that the tests below can fail)', async () => {
    expect(new Set(await Promise.all(CODECS.map(hash))).size).toBe(3);
  });

  it.each([
    ['int8', 1],
    ['int8', 2],
    ['int8', 3],
    ['fp16', 1],
    ['fp16', 2],
    ['fp16', 3],
  ])('%s gives the --local params_sha256 with %i workers, and measures the bytes it reports', async (codec, workers) => {
    const r = await runCli(['train', '--workers', String(workers), '--queue', bed.queue(), ...SHORT, '--compress', codec]);
    expect(r.code, r.stderr).toBe(0);
    const s = lastJson(r.stdout);
    expect(s).toMatchObject({ params_sha256: await hash(codec), applied_steps: SHORT_STEPS, compress: codec, results_rejected: 0 });
    const reported = s.bytes_per_step as { gradients_up: number };
    // Equal here only because a compressed result carries one shard (never shards 0..n summed: StepGather.read)
    // and every shard of this run is non-empty: K payloads of encodedGradientBytes a step. In general the measured
    // figure is the payloads of the results kept, at most bytes_per_step's: less with empty shards (a last, partial
    // batch) and, uncompressed, when a job of shards 0..n answers with one summed payload for its n + 1 shards.
    expect(s.gradients_up_measured).toBe(reported.gradients_up);
    expect(reported).toEqual((await summary(codec)).bytes_per_step);
  });

  it('int8 sends at most 0.27× the gradient bytes of none, fp16 half (bytes_per_step of --json)', async () => {
    const up = async (codec: string): Promise<number> => ((await summary(codec)).bytes_per_step as { gradients_up: number }).gradients_up;
    const params = ((await summary('none')).bytes_per_step as { params_down: number }).params_down;
    expect(await up('none')).toBe(params); // 4 shards × 25,450 float32 values, both ways
    expect((await up('int8')) / (await up('none'))).toBeLessThanOrEqual(0.27);
    expect((await up('fp16')) / (await up('none'))).toBe(0.5);
  });

  it('int8 survives a worker killed mid-run: same params_sha256 (the residuals are the shards’, not the worker’s)', async () => {
    const queue = bed.queue();
    const worker = (): ReturnType<typeof spawnCli> => spawnCli(['worker', '--queue', queue, '--data-dir', SHARED_DATA]);
    const coordinator = spawnCli(['train', '--workers', '0', '--queue', queue, ...LONG]);
    const a = worker();
    await freezeMidRun(bed.redis, queue, a.child, coordinator, 10);
    const b = worker();
    a.child.kill('SIGKILL');
    const c = worker();
    const r = await coordinator.done;
    expect(r.code, r.stderr).toBe(0);
    expect(lastJson(r.stdout)).toMatchObject({ params_sha256: await bed.localHash(LONG), applied_steps: LONG_STEPS });
    for (const w of [b, c]) w.child.kill('SIGTERM');
    await Promise.all([b.done, c.done]);
  });

  it.each([
    // In-process, a longer run: the 64 steps would be done before the test could kill it.
    ['on the cluster', ['--workers', '1'], LONG, LONG_STEPS],
    ['in-process', ['--local'], [...runOver(8192), '--compress', 'int8'], 256],
  ])(
    'int8 resumes from a checkpoint (with the residuals) after the coordinator is killed %s: same params_sha256',
    async (_, how, run, steps) => {
      const dir = join(bed.tmp, `resume-${how[0]}`);
      const queue = how[0] === '--local' ? [] : ['--queue', bed.queue()];
      const args = ['train', ...how, ...queue, '--checkpoint', dir, '--checkpoint-every', '20', ...run];
      const first = spawnCli(args);
      await waitFor('a checkpoint', () => existsSync(join(dir, 'checkpoint.gradq')));
      first.child.kill('SIGKILL');
      await first.done;
      const second = await runCli([...args, '--resume']);
      expect(second.code, second.stderr).toBe(0);
      const resumedAt = Number(/resuming from .*checkpoint\.gradq at step (\d+)/.exec(second.stderr)?.[1]);
      expect(resumedAt > 0 && resumedAt < steps, second.stderr).toBe(true);
      expect(lastJson(second.stdout)).toMatchObject({ params_sha256: await bed.localHash(run), applied_steps: steps });
    },
  );

  it('int8 on SIGTERM writes a checkpoint with the residuals of the steps done; --resume ends with the --local hash', async () => {
    const dir = join(bed.tmp, 'sigterm');
    const queue = bed.queue();
    const args = ['train', '--queue', queue, '--checkpoint', dir, '--checkpoint-every', '100000', ...LONG];
    const first = spawnCli([args[0], '--workers', '2', ...args.slice(1)]);
    await waitFor('step 20', async () => (await bed.publishedStep(queue)) >= 20);
    first.child.kill('SIGTERM');
    const stopped = await first.done;
    expect(stopped.code, stopped.stderr).toBe(143);
    const at = Number(/checkpoint written to .*continues at step (\d+)/.exec(stopped.stderr)?.[1]);
    expect(at >= 20 && at < LONG_STEPS, stopped.stderr).toBe(true);
    const second = await runCli([args[0], '--workers', '1', ...args.slice(1), '--resume']);
    expect(second.code, second.stderr).toBe(0);
    expect(second.stderr).toContain(`at step ${at}`);
    expect(lastJson(second.stdout)).toMatchObject({ params_sha256: await bed.localHash(LONG), applied_steps: LONG_STEPS });
  });

  it('int8 gives up when a shard’s residual is gone from Redis (exit 4, naming step, shard and key); --resume from the last checkpoint ends with the --local hash', async () => {
    const dir = join(bed.tmp, 'lost-residual');
    const queue = bed.queue();
    const args = ['train', '--queue', queue, '--checkpoint', dir, '--checkpoint-every', '5', ...LONG];
    const coordinator = spawnCli([args[0], '--workers', '0', ...args.slice(1)]);
    const a = spawnCli(['worker', '--queue', queue, '--data-dir', SHARED_DATA, '--quiet']);
    await waitFor(
      'a checkpoint and step 12',
      async () => existsSync(join(dir, 'checkpoint.gradq')) && (await bed.publishedStep(queue)) >= 12,
    );
    // Worker a keeps the residuals it wrote: it goes (finishing its job), and with it every copy but Redis's, which
    // are deleted.
    a.child.kill('SIGTERM');
    await a.done;
    const residuals = await bed.redis.keys(`${QUEUE_PREFIX}:${queue}:run:*:residual:*`);
    expect(residuals.length).toBeGreaterThan(0);
    await bed.redis.del(...residuals);
    const b = spawnCli(['worker', '--queue', queue, '--data-dir', SHARED_DATA, '--quiet']);
    const r = await coordinator.done;
    b.child.kill('SIGTERM');
    await b.done;
    expect(r.code, r.stderr).toBe(4);
    const lines = r.stderr.split('\n').filter((l) => l.startsWith('gradq:'));
    expect(lines, r.stderr).toEqual([
      expect.stringMatching(
        /^gradq: step \d+ shard \d: \S+:residual:\d+:\d:\d+: residual missing \(expired, or Redis lost it\); no attempt can compute the shard without its error-feedback residual, gave up \(resume from the last checkpoint.*--resume\); no checkpoint written now .*the last one in .*checkpoint\.gradq$/,
      ),
    ]);
    const resumed = await runCli([args[0], '--workers', '1', ...args.slice(1), '--resume']);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(lastJson(resumed.stdout)).toMatchObject({ params_sha256: await bed.localHash(LONG), applied_steps: LONG_STEPS });
  });

  it('refuses --compress with --sync local:H, and an unknown codec, as bad input', async () => {
    const out = join(bed.tmp, 'refused.gradq');
    await expectInputError(['train', '--local', ...SHORT, '--sync', 'local:4', '--compress', 'int8'], /--compress int8 .*--sync sync/, out);
    await expectInputError(['train', '--local', ...SHORT, '--compress', 'int4'], /int4/, out);
  });
});
