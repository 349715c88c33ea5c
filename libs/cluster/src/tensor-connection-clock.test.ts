import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { TensorConnection } from './tensor-connection.js';

// The run's clock (step leases): XADD announcements, XREAD waits, and a GET sent behind a wait.
const REDIS = 'redis://127.0.0.1:6379';
const redis = new Redis(REDIS);
const prefix = `test-clock-${randomUUID()}:`;
const connections: TensorConnection[] = [];
afterAll(async () => {
  for (const c of connections) c.disconnect();
  const keys = await redis.keys(`${prefix}*`);
  if (keys.length > 0) await redis.del(...keys);
  await redis.quit();
});

function connection(): TensorConnection {
  const c = new TensorConnection(REDIS, 1000);
  connections.push(c);
  return c;
}

describe('TensorConnection clock', () => {
  it('announces steps and hands a waiter the newest one after the entry it saw, with its lease set', async () => {
    const clock = `${prefix}a`;
    const coordinator = connection();
    const worker = connection();
    expect(await worker.awaitAnnounce(clock, '0', 50)).toBeNull(); // nothing yet: null after the block
    await coordinator.announce(clock, 3, 7, 60_000);
    await coordinator.announce(clock, 4, 7, 60_000);
    const newest = await worker.awaitAnnounce(clock, '0', 50);
    expect(newest).toMatchObject({ step: 4, lease: 7 });
    expect(await redis.pttl(clock)).toBeGreaterThan(50_000);
    // Blocked after the newest entry until the next announcement.
    const waiting = worker.awaitAnnounce(clock, newest!.id, 2000);
    await new Promise((r) => setTimeout(r, 30));
    await coordinator.announce(clock, 5, 8, 60_000);
    expect(await waiting).toMatchObject({ step: 5, lease: 8 });
  });

  it('runs a GET sent behind a blocked wait only once the wait is answered (θ comes with the announcement)', async () => {
    const clock = `${prefix}b`;
    const key = `${prefix}theta:9`;
    const coordinator = connection();
    const worker = connection();
    const waiting = worker.awaitAnnounce(clock, '0', 2000);
    const fetched = worker.get(key, (length) => new Uint8Array(length)); // no await between: queued behind the XREAD
    await new Promise((r) => setTimeout(r, 30));
    await Promise.all([coordinator.set(key, Buffer.from('theta nine'), 60_000), coordinator.announce(clock, 9, 0, 60_000)]);
    expect(await waiting).toMatchObject({ step: 9 });
    expect(Buffer.from((await fetched) as Uint8Array).toString()).toBe('theta nine');
  });

  it('refuses a clock entry that is not an announcement', async () => {
    const clock = `${prefix}c`;
    await redis.xadd(clock, '*', 'step', 'two');
    await expect(connection().awaitAnnounce(clock, '0', 50)).rejects.toThrow(/Redis XREAD: unexpected reply/);
    await expect(connection().awaitAnnounce(clock, '0', 0)).rejects.toThrow(/0 would block for ever/);
  });
});
