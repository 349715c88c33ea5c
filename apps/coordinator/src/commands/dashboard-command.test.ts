import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { killLeftoverChildren, lastJson, runCli, SHARED_DATA, spawnCli, waitFor } from '../testing/run-cli.js';

const RUN = ['--local', '--data-dir', SHARED_DATA, '--model', 'mlp:784-16-10', '--train-samples', '1024', '--epochs', '2', '--batch', '64', '--shards', '2', '--augment-shift', '0', '--json']; // prettier-ignore
const tmp = mkdtempSync(join(tmpdir(), 'gradq-dashboard-cmd-'));
afterAll(() => {
  killLeftoverChildren();
  rmSync(tmp, { recursive: true, force: true });
});

/** Waits for "… at http://…/" on a child's stderr and returns the URL. */
async function urlOf(child: ReturnType<typeof spawnCli>['child']): Promise<string> {
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  await waitFor('the dashboard URL', () => / at http:\/\/127\.0\.0\.1:\d+\//.test(stderr), 60_000);
  return / at (http:\/\/127\.0\.0\.1:\d+\/)/.exec(stderr)![1];
}

describe('gradq train --dashboard, --log-dir and gradq dashboard', () => {
  it('keeps the dashboard up after the run with --dashboard-keep, and gradq dashboard serves the finished run from its log', async () => {
    const logDir = join(tmp, 'log');
    const train = spawnCli(['train', ...RUN, '--dashboard', '0', '--dashboard-keep', '--log-dir', logDir]);
    const url = await urlOf(train.child);
    await waitFor(
      'the run to finish',
      async () => ((await (await fetch(`${url}api/run`)).json()) as { status: string }).status === 'finished',
    );
    const live = (await (await fetch(`${url}api/run`)).json()) as { steps: unknown[]; epochs: unknown[] };
    train.child.kill('SIGINT');
    const done = await train.done;
    expect(done.code, done.stderr).toBe(0);
    expect(lastJson(done.stdout).steps).toBe(32);
    expect(live.steps).toHaveLength(32);
    await expect(fetch(`${url}api/run`)).rejects.toThrow(); // closed

    const replay = spawnCli(['dashboard', '--log-dir', logDir, '--listen', '0']);
    const replayUrl = await urlOf(replay.child);
    const back = (await (await fetch(`${replayUrl}api/run`)).json()) as {
      steps: unknown[];
      epochs: unknown[];
      status: string;
      info: { replay: boolean };
    };
    expect(back.steps).toEqual(live.steps);
    expect(back.epochs).toEqual(live.epochs);
    expect([back.status, back.info.replay]).toEqual(['finished', true]);
    replay.child.kill('SIGTERM');
    expect((await replay.done).code).toBe(0);
  });

  it('closes the dashboard at the end of a run without --dashboard-keep, and its parameters are those of a run without it', async () => {
    const [withDashboard, without] = await Promise.all([runCli(['train', ...RUN, '--dashboard', '0']), runCli(['train', ...RUN])]);
    expect(withDashboard.code, withDashboard.stderr).toBe(0);
    expect(withDashboard.stderr).toMatch(/dashboard at http:\/\/127\.0\.0\.1:\d+\//);
    expect(lastJson(withDashboard.stdout).params_sha256).toBe(lastJson(without.stdout).params_sha256);
  });

  it('refuses a bad address, --dashboard-keep alone and a missing log, each in one line', async () => {
    for (const [args, pattern] of [
      [['train', ...RUN, '--dashboard', '99999'], /--dashboard "99999": the port must be/],
      [['train', ...RUN, '--dashboard-keep'], /--dashboard-keep needs --dashboard/],
      [['dashboard', '--log-dir', join(tmp, 'none')], /cannot read .*metrics\.jsonl \(ENOENT\)/],
      [['dashboard'], /--log-dir DIR is required/],
    ] as const) {
      const r = await runCli(args);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(pattern);
    }
  });
});
