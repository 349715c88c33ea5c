import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { QUEUE_PREFIX } from '@gradq/cluster';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';

const BIN = fileURLToPath(new URL('../../coordinator/bin/gradq.js', import.meta.url));
const DATA = fileURLToPath(new URL('../../../../shared/data', import.meta.url));
const connection = new Redis('redis://127.0.0.1:6379', { maxRetriesPerRequest: null });
afterAll(async () => {
  await connection.quit();
});

function run(args: string[]) {
  const child = spawn(process.execPath, [BIN, 'worker', ...args]);
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const done = new Promise<{ code: number | null; stderr: string }>((resolve) => child.on('close', (code) => resolve({ code, stderr })));
  return { child, done };
}

async function until(check: () => Promise<boolean>, ms = 20_000): Promise<void> {
  const start = Date.now();
  while (!(await check())) {
    if (Date.now() - start > ms) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('gradq worker', () => {
  it('connects to its queue and closes cleanly on SIGTERM', async () => {
    const name = `test-${randomUUID().slice(0, 8)}`;
    const queue = new Queue(name, { connection, prefix: QUEUE_PREFIX });
    const w = run(['--queue', name, '--data-dir', DATA]);
    await until(async () => (await queue.getWorkersCount()) === 1);
    w.child.kill('SIGTERM');
    const { code, stderr } = await w.done;
    expect(code, stderr).toBe(0);
    expect(stderr).toContain('SIGTERM, closing');
    await until(async () => (await queue.getWorkersCount()) === 0);
    await queue.obliterate({ force: true });
    await queue.close();
  });

  it('refuses a URL that is not redis:// with one line and exit code 2', async () => {
    const { code, stderr } = await run(['--redis', 'http://:pw@example:80']).done;
    expect(code).toBe(2);
    expect(stderr.trim().split('\n')).toEqual(['gradq: error: --redis http://:***@example:80: scheme http: is not redis: or rediss:']);
  });
});
