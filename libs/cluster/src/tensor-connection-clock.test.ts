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
  it('adds entries and hands a waiter those after the entry it saw, oldest first, with their fields', async () => {
    const clock = `${prefix}a`;
    const coordinator = connection();
    const worker = connection();
    expect(await worker.awaitAnnounce(clock, '0', 50)).toBeNull(); // nothing yet: null after the block
    await coordinator.announce(clock, ['step', '3', 'set', '7'], 60_000);
    await coordinator.announce(clock, ['step', '4', 'set', '7'], 60_000);
    const both = await worker.awaitAnnounce(clock, '0', 50);
    expect(both?.map((e) => e.fields)).toEqual([
      ['step', '3', 'set', '7'],
      ['step', '4', 'set', '7'],
    ]);
    expect(await redis.pttl(clock)).toBeGreaterThan(50_000);
    // Blocked after the newest entry until the next one.
    const waiting = worker.awaitAnnounce(clock, both![1].id, 2000);
    await new Promise((r) => setTimeout(r, 30));
    await coordinator.announce(clock, ['step', '5', 'set', '8'], 60_000);
    expect((await waiting)?.map((e) => e.fields)).toEqual([['step', '5', 'set', '8']]);
    await expect(coordinator.announce(clock, ['step'], 60_000)).rejects.toThrow(/1 field names and values/);
  });

  it('runs a GET sent behind a blocked wait only once the wait is answered (θ comes with the announcement)', async () => {
    const clock = `${prefix}b`;
    const key = `${prefix}theta:9`;
    const coordinator = connection();
    const worker = connection();
    const waiting = worker.awaitAnnounce(clock, '0', 2000);
    const fetched = worker.get(key, (length) => new Uint8Array(length)); // no await between: queued behind the XREAD
    await new Promise((r) => setTimeout(r, 30));
    await Promise.all([coordinator.set(key, Buffer.from('theta nine'), 60_000), coordinator.announce(clock, ['step', '9'], 60_000)]);
    expect((await waiting)?.[0].fields).toEqual(['step', '9']);
    expect(Buffer.from((await fetched) as Uint8Array).toString()).toBe('theta nine');
  });

  it('without a block (0 ms): the entries there now, or null at once, holding up no command behind it', async () => {
    const clock = `${prefix}d`;
    const worker = connection();
    const t0 = performance.now();
    expect(await worker.awaitAnnounce(clock, '0', 0)).toBeNull();
    await redis.xadd(clock, '*', 'step', '1');
    const [read, pinged] = await Promise.all([worker.awaitAnnounce(clock, '0', 0), worker.get(`${prefix}none`, () => 'skip')]);
    expect(read?.map((e) => e.fields)).toEqual([['step', '1']]);
    expect(pinged).toBeNull();
    expect(await worker.awaitAnnounce(clock, read![0].id, 0)).toBeNull();
    expect(performance.now() - t0).toBeLessThan(500);
  });

  it('hands over any fields as text (their meaning is the reader’s to check) and refuses a wait that never ends', async () => {
    const clock = `${prefix}c`;
    await redis.xadd(clock, '*', 'step', 'two', 'x', '');
    expect((await connection().awaitAnnounce(clock, '0', 50))?.[0].fields).toEqual(['step', 'two', 'x', '']);
    await expect(connection().awaitAnnounce(clock, '0', -1)).rejects.toThrow(/block -1 ms/);
    await expect(connection().awaitAnnounce(clock, '0', Number.POSITIVE_INFINITY)).rejects.toThrow(/block Infinity ms/);
  });
});
