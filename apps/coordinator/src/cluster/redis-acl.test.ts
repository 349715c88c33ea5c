import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lastJson, runCli, SHARED_DATA } from '../testing/run-cli.js';
import { PrivateRedis, redisServerAvailable } from './private-redis.js';

// The README's Redis ACL, applied to a redis-server of the test's own (an ACL is server-wide: not on the shared one).
const readme = readFileSync(new URL('../../../../README.md', import.meta.url), 'utf8');
const RUN = ['--data-dir', SHARED_DATA, '--model', 'mlp:784-32-10', '--train-samples', '1024', '--epochs', '1', '--seed', '3', '--json'];

/** The words of a shell command line with '…' quoting (all the README's ACL line uses). */
function shellWords(line: string): string[] {
  return [...line.matchAll(/'([^']*)'|(\S+)/g)].map((m) => m[1] ?? m[2]);
}

const available = redisServerAvailable();
let server: PrivateRedis;
let admin: Redis;
let tmp: string;
const password = randomBytes(12).toString('hex');

beforeAll(async () => {
  if (!available) return;
  tmp = mkdtempSync(join(tmpdir(), 'gradq-acl-'));
  server = await PrivateRedis.start(() => undefined);
  admin = new Redis(server.url, { maxRetriesPerRequest: 1 });
});

afterAll(async () => {
  if (!available) return;
  await admin.quit();
  await server.stop();
  rmSync(tmp, { recursive: true, force: true });
});

describe.skipIf(!available)('the Redis ACL of the README', () => {
  it('lets a signed cluster run through as that user, exact, and keeps the user from anything else', async () => {
    const line = readme.split('\n').find((l) => l.startsWith('redis-cli ACL SETUSER gradq '));
    expect(line, 'the README gives the ACL as one redis-cli line').toBeDefined();
    const [, ...command] = shellWords(line ?? '').map((w) => w.replace('PASSWORD', password));
    expect(await admin.call(command[0], ...command.slice(1))).toBe('OK');
    await admin.call('ACL', 'LOG', 'RESET');

    const secret = join(tmp, 'secret');
    writeFileSync(secret, `${randomBytes(32).toString('hex')}\n`, { mode: 0o600 });
    const url = server.url.replace('redis://', `redis://gradq:${password}@`);
    const local = await runCli(['train', '--local', ...RUN]);
    expect(local.code, local.stderr).toBe(0);
    const cluster = await runCli(['train', '--workers', '1', '--redis', url, '--secret-file', secret, ...RUN]);
    expect(cluster.code, cluster.stderr).toBe(0);
    expect(lastJson(cluster.stdout)).toMatchObject({ params_sha256: lastJson(local.stdout).params_sha256, results_rejected: 0 });
    expect(cluster.stderr).not.toContain(password);
    expect(await admin.call('ACL', 'LOG'), 'nothing gradq did was denied').toEqual([]);

    const gradq = new Redis(url, { maxRetriesPerRequest: 1 });
    try {
      expect(await gradq.set('gradq:acl-test', '1')).toBe('OK');
      for (const denied of [
        ['SET', 'other:key', '1'],
        ['GET', 'other:key'],
        ['FLUSHALL'],
        ['FLUSHDB'],
        ['CONFIG', 'GET', 'maxmemory'],
        ['KEYS', '*'],
        ['SHUTDOWN'],
        ['CLIENT', 'KILL', 'ID', '1'],
        ['SCRIPT', 'FLUSH'],
        ['FUNCTION', 'FLUSH'],
        ['SUBSCRIBE', 'gradq:channel'],
        ['EVAL', "return redis.call('GET', 'other:key')", '0'],
      ]) {
        await expect(gradq.call(denied[0], ...denied.slice(1)), denied.join(' ')).rejects.toThrow(/NOPERM|can't access/); // a script's keys are checked too
      }
    } finally {
      gradq.disconnect();
    }
  });
});
