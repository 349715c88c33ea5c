import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { deleteKeysWithPrefix, QUEUE_PREFIX } from '@gradq/cluster';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GRADQ_BIN } from '../gradq-bin.js';
import { RUN } from '../testing/cluster-fixtures.js';
import { collectOutput, killLeftoverChildren, lastJson, runCli, SHARED_DATA } from '../testing/run-cli.js';

// 1 epoch of 1024 samples: 16 steps of 4 shards. θ (25,450 floats) and each result are over 64 KiB, so both travel
// through shared memory when it is on.
const SHORT = RUN.map((a, i) => (RUN[i - 1] === '--train-samples' ? '1024' : RUN[i - 1] === '--epochs' ? '1' : a));
const SHM_LINE = /travel through (\/dev\/shm\/gradq-[A-Za-z0-9]{6})/;

const redis = new Redis('redis://127.0.0.1:6379', { maxRetriesPerRequest: null });
const queues: string[] = [];
const children: ChildProcess[] = []; // not spawnCli's: killLeftoverChildren does not know them
let reference: string;

function queueName(): string {
  const q = `test-shm-${randomUUID().slice(0, 8)}`;
  queues.push(q);
  return q;
}

beforeAll(async () => {
  const local = await runCli(['train', '--local', ...SHORT]);
  expect(local.code, local.stderr).toBe(0);
  reference = lastJson(local.stdout).params_sha256 as string;
});

afterAll(async () => {
  killLeftoverChildren();
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  for (const q of queues) {
    await new Queue(q, { connection: redis, prefix: QUEUE_PREFIX }).obliterate({ force: true });
    await deleteKeysWithPrefix(redis, `${QUEUE_PREFIX}:${q}:`);
  }
  await redis.quit();
});

describe.skipIf(!existsSync('/dev/shm'))('θ and results through shared memory', () => {
  it('give the --local params_sha256 with 2 workers, and the directory is gone when the run ends', async () => {
    const r = await runCli(['train', '--workers', '2', '--queue', queueName(), ...SHORT]);
    expect(r.code, r.stderr).toBe(0);
    expect(lastJson(r.stdout).params_sha256).toBe(reference);
    const dir = SHM_LINE.exec(r.stderr)?.[1];
    expect(dir, r.stderr).toBeDefined();
    expect(existsSync(dir!)).toBe(false);
  });

  it('are not used with --shm off, and the run gives the same bits through Redis', async () => {
    const r = await runCli(['train', '--workers', '2', '--shm', 'off', '--queue', queueName(), ...SHORT]);
    expect(r.code, r.stderr).toBe(0);
    expect(lastJson(r.stdout).params_sha256).toBe(reference);
    expect(r.stderr).not.toMatch(SHM_LINE);
  });

  // A worker in a mount namespace of its own, with an empty tmpfs on /dev/shm, is a worker on another machine as far
  // as shared memory goes (the coordinator's directory is not there). It needs root for unshare and mount.
  const canUnshare = process.getuid?.() === 0 && spawnSync('unshare', ['-m', 'true']).status === 0;
  it.skipIf(!canUnshare)('fall back to Redis when a worker cannot open the directory, and the bits stay the same', async () => {
    const queue = queueName();
    const args = ['worker', '--queue', queue, '--name', 'elsewhere', '--data-dir', SHARED_DATA, '--quiet'];
    const script = 'mount -t tmpfs tmpfs /dev/shm && exec "$0" "$@"';
    const elsewhere = spawn('unshare', ['-m', 'sh', '-c', script, process.execPath, GRADQ_BIN, ...args]);
    children.push(elsewhere);
    const done = collectOutput(elsewhere);
    try {
      // One local worker beside it: its results keep coming through shared memory, the other's through Redis.
      const r = await runCli(['train', '--workers', '1', '--queue', queue, ...SHORT]);
      expect(r.code, r.stderr).toBe(0);
      expect(lastJson(r.stdout).params_sha256).toBe(reference);
      expect(r.stderr).toMatch(/cannot open the shared memory θ is in .*θ goes through Redis from now on/);
    } finally {
      elsewhere.kill('SIGTERM');
      await done;
    }
  });
});
