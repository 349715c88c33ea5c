import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { encodeParams, leaseStepJob, readResultMessage, TensorConnection, type LeaseJob } from '@gradq/cluster';
import { planStep } from '@gradq/data';
import { Model } from '@gradq/nn';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { LeaseHolder, RELEASE_MS } from './lease-holder.js';
import { ShardProcessor } from './shard-processor.js';

const DATA = fileURLToPath(new URL('../../../../shared/data', import.meta.url));
const SPEC = 'mlp:784-16-10';
const redis = new Redis('redis://127.0.0.1:6379');
const prefix = `test-lease-${randomUUID()}:`;
const connections: TensorConnection[] = [];
afterAll(async () => {
  for (const c of connections) c.disconnect();
  const keys = await redis.keys(`${prefix}*`);
  if (keys.length > 0) await redis.del(...keys);
  await redis.quit();
});

function connection(): TensorConnection {
  const c = new TensorConnection('redis://127.0.0.1:6379');
  connections.push(c);
  return c;
}

/** Shards 1..2 of 3, steps [2, 6) of an epoch of 8 steps (512 samples, batch 64), set 5. */
function lease(tag: string, patch: Partial<LeaseJob> = {}): LeaseJob {
  return {
    v: 1, kind: 'lease', run: 'r1', step: 2, steps: 4, shard: 1, count: 2, shards: 3, attempt: 0, set: 5, dataset: 'mnist',
    trainSamples: 512, seed: 7, batch: 64, model: SPEC, shift: 0, codec: 'none', paramsPrefix: `${prefix}${tag}:params:`,
    clockKey: `${prefix}${tag}:clock`, resultsKey: `${prefix}${tag}:results`, ...patch,
  }; // prettier-ignore
}

async function popAll(key: string): Promise<Array<Record<string, unknown>>> {
  const messages = (await redis.lrangeBuffer(key, 0, -1)).map((m) => readResultMessage(m).header);
  await redis.del(key);
  return messages;
}

describe('LeaseHolder', () => {
  it('computes each announced step of its shards as a one-step job of them, then ends with the lease', async () => {
    const job = lease('a');
    const coordinator = connection();
    const theta = (step: number) => new Model(SPEC, { seed: step }).params;
    const holder = new LeaseHolder(new ShardProcessor(connection(), DATA, 'holder'), connection());
    const held = holder.hold(job, 'lease-a', new AbortController().signal);
    for (let step = 2; step < 6; step++) {
      await coordinator.set(`${job.paramsPrefix}${step}`, encodeParams(theta(step)), 60_000);
      await coordinator.announce(job.clockKey, step, 5, 60_000);
      // The next step is announced once this one's two shards are in (as the coordinator does).
      for (let i = 0; (await redis.llen(job.resultsKey)) < 2 * (step - 1); i++) {
        if (i > 400) throw new Error(`step ${step}: no results`);
        await new Promise((r) => setTimeout(r, 5));
      }
    }
    const results = await held;
    expect(results.map((r) => [r.step, r.shard])).toEqual([[2, 1], [2, 2], [3, 1], [3, 2], [4, 1], [4, 2], [5, 1], [5, 2]]); // prettier-ignore
    const pushed = await popAll(job.resultsKey);
    expect(pushed).toEqual(results);
    // The same as a fresh processor computing step 4's job of those shards.
    const plan = planStep(512, 64, 3, 4);
    const direct = await new ShardProcessor(connection(), DATA, 'holder').processLeased(leaseStepJob(job, 4, plan.epoch, plan.shards));
    const strip = (r: object) => ({ ...r, fetchMs: 0, computeMs: 0, uploadMs: 0 });
    expect(direct.map(strip)).toEqual(results.slice(4, 6).map(strip));
    const again = await popAll(job.resultsKey);
    expect(again.map(strip)).toEqual(pushed.slice(4, 6).map(strip));
  });

  it('starts at the step announced last, stops at a step of another set, and hands the lease back when no step comes', async () => {
    const coordinator = connection();
    const theta = encodeParams(new Model(SPEC, { seed: 1 }).params);
    // A holder taking the lease late: steps 2 and 3 were computed by a holder before it; 4 is the one waited for.
    const late = lease('b');
    for (const step of [2, 3, 4]) await coordinator.announce(late.clockKey, step, 5, 60_000);
    await coordinator.set(`${late.paramsPrefix}4`, theta, 60_000);
    const holder = new LeaseHolder(new ShardProcessor(connection(), DATA, 'late'), connection());
    const held = holder.hold(late, 'lease-b', new AbortController().signal);
    for (let i = 0; (await redis.llen(late.resultsKey)) < 2; i++) {
      if (i > 400) throw new Error('no results');
      await new Promise((r) => setTimeout(r, 5));
    }
    await coordinator.announce(late.clockKey, 5, 6, 60_000); // a new set from step 5 on
    expect((await held).map((r) => r.step)).toEqual([4, 4]);
    expect(await popAll(late.resultsKey)).toHaveLength(2); // no release: the coordinator ended the lease itself

    // No step at all: handed back after RELEASE_MS, from the lease's first step on.
    const idle = lease('c');
    const t0 = performance.now();
    const none = await new LeaseHolder(new ShardProcessor(connection(), DATA, 'idle'), connection()).hold(
      idle,
      'lease-c',
      new AbortController().signal,
    );
    expect(none).toEqual([]);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(RELEASE_MS);
    expect(await popAll(idle.resultsKey)).toEqual([{ v: 1, kind: 'release', run: 'r1', step: 2, lease: 'lease-c', worker: 'idle' }]);

    // A closing worker hands it back at once.
    const closing = new AbortController();
    closing.abort();
    const closed = lease('d');
    await new LeaseHolder(new ShardProcessor(connection(), DATA, 'closing'), connection()).hold(closed, 'lease-d', closing.signal);
    expect(await popAll(closed.resultsKey)).toEqual([expect.objectContaining({ kind: 'release', step: 2, lease: 'lease-d' })]);
  });

  it('refuses a lease across an epoch’s end', async () => {
    const holder = new LeaseHolder(new ShardProcessor(connection(), DATA, 'x'), connection());
    await expect(holder.hold(lease('e', { step: 6, steps: 4 }), 'lease-e', new AbortController().signal)).rejects.toThrow(
      /steps \[6, 10\) are not within one epoch of 8 steps/,
    );
  });
});
