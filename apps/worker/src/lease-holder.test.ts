import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import {
  clockFields,
  encodeParams,
  leaseRoundJob,
  leaseStepJob,
  MessageSigner,
  readResultMessage,
  signLeaseJob,
  TensorConnection,
  type LeaseJob,
} from '@gradq/cluster';
import { planStep } from '@gradq/data';
import { addInto, Model, paramsDigest } from '@gradq/nn';
import { makeReplicaFrom, replicaSpecFor } from '@gradq/train';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { LeaseHolder, RELEASE_MS, STEPPING_LEAD } from './lease-holder.js';
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
    v: 3, kind: 'lease', run: 'r1', step: 2, steps: 4, shard: 1, count: 2, shards: 3, attempt: 0, set: 5, dataset: 'mnist',
    trainSamples: 512, seed: 7, batch: 64, model: SPEC, shift: 0, codec: 'none', paramsPrefix: `${prefix}${tag}:params:`,
    clockKey: `${prefix}${tag}:clock`, resultsKey: `${prefix}${tag}:results`, stepping: false, stateKey: '', stateBuffers: 0,
    stateT: 0, optimizer: 'adam', lr: 0.01, schedule: 'cosine', warmup: 0, momentum: 0.9, weightDecay: 0, epochs: 1, rounds: 0,
    stateKeys: [], stateTs: [], ...patch,
  }; // prettier-ignore
}

/** Adds a clock entry as the coordinator does: step `step` of set `set` (the set's last, with `last`). */
function announce(c: TensorConnection, job: LeaseJob, step: number, set: number, last = false, signer?: MessageSigner) {
  return c.announce(job.clockKey, clockFields({ step, set, last }, job.clockKey, signer), 60_000);
}

/** Waits until the list holds `n` messages. */
async function untilPushed(key: string, n: number): Promise<void> {
  for (let i = 0; (await redis.llen(key)) < n; i++) {
    if (i > 400) throw new Error(`${key}: ${await redis.llen(key)} of ${n} messages`);
    await new Promise((r) => setTimeout(r, 5));
  }
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
      await announce(coordinator, job, step, 5);
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
    for (const step of [2, 3, 4]) await announce(coordinator, late, step, 5);
    await coordinator.set(`${late.paramsPrefix}4`, theta, 60_000);
    const holder = new LeaseHolder(new ShardProcessor(connection(), DATA, 'late'), connection());
    const held = holder.hold(late, 'lease-b', new AbortController().signal);
    for (let i = 0; (await redis.llen(late.resultsKey)) < 2; i++) {
      if (i > 400) throw new Error('no results');
      await new Promise((r) => setTimeout(r, 5));
    }
    await announce(coordinator, late, 5, 6); // a new set from step 5 on
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

  it('ends with the last step of its set (computing it if owed), skipping entries that are not the clock’s', async () => {
    const coordinator = connection();
    const theta = encodeParams(new Model(SPEC, { seed: 1 }).params);
    const logged: string[] = [];
    const job = lease('f');
    const holder = new LeaseHolder(new ShardProcessor(connection(), DATA, 'f'), connection(), (line) => logged.push(line));
    const held = holder.hold(job, 'lease-f', new AbortController().signal);
    await coordinator.set(`${job.paramsPrefix}2`, theta, 60_000);
    await redis.xadd(job.clockKey, '*', 'step', '3e0', 'set', '5', 'last', '0'); // not an entry: skipped
    await announce(coordinator, job, 2, 5);
    await untilPushed(job.resultsKey, 2);
    // Step 3 announced and, before the holder computed it, its set ended with it: computed, then the lease ends.
    await coordinator.set(`${job.paramsPrefix}3`, theta, 60_000);
    await announce(coordinator, job, 3, 5);
    await announce(coordinator, job, 3, 5, true);
    expect((await held).map((r) => r.step)).toEqual([2, 2, 3, 3]);
    expect((await popAll(job.resultsKey)).map((m) => m.kind ?? m.step)).toEqual([2, 2, 3, 3]); // no release
    expect(logged).toEqual([
      expect.stringMatching(/^f: lease lease-f: clock entry \S+ \["step","3e0".*: step and set must be whole numbers; ignored$/),
    ]);

    // Waiting for step 4 when the set ends with step 3: the holder ends at once.
    const waiting = lease('g');
    const g = new LeaseHolder(new ShardProcessor(connection(), DATA, 'g'), connection()).hold(
      waiting,
      'lease-g',
      new AbortController().signal,
    );
    await coordinator.set(`${waiting.paramsPrefix}3`, theta, 60_000);
    await announce(coordinator, waiting, 3, 5);
    await untilPushed(waiting.resultsKey, 2);
    const t0 = performance.now();
    await announce(coordinator, waiting, 3, 5, true);
    expect((await g).map((r) => r.step)).toEqual([3, 3]);
    expect(performance.now() - t0).toBeLessThan(RELEASE_MS / 2);
  });

  it('with the run’s secret: computes only steps whose entries it signed, and refuses a forged lease unanswered', async () => {
    const signer = new MessageSigner(Buffer.from('lease secret'));
    const coordinator = connection();
    const job = signLeaseJob(lease('h'), signer);
    const logged: string[] = [];
    const processor = new ShardProcessor(connection(), DATA, 'h', () => undefined, signer);
    const held = new LeaseHolder(processor, connection(), (line) => logged.push(line), signer).hold(
      job,
      'lease-h',
      new AbortController().signal,
    );
    const key = `${job.paramsPrefix}2`;
    await coordinator.set(key, encodeParams(new Model(SPEC, { seed: 1 }).params, { key, signer }), 60_000);
    await announce(coordinator, job, 2, 6); // unsigned: a forged regrouping (it would end the lease), skipped
    await announce(coordinator, job, 2, 5, true, signer);
    expect((await held).map((r) => r.step)).toEqual([2, 2]);
    expect(logged).toEqual([expect.stringMatching(/not signed with the run’s secret; ignored$/)]);
    await redis.del(job.resultsKey);

    const forged = { ...job, sig: job.sig?.replace(/^./, (c) => (c === '0' ? '1' : '0')) };
    await expect(
      new LeaseHolder(processor, connection(), () => undefined, signer).hold(forged, 'lease-h2', new AbortController().signal),
    ).rejects.toThrow(/signature/);
    expect(await redis.llen(job.resultsKey)).toBe(0); // unanswered
  });

  it('ends a lease quietly whose step failed because a newer set ended it meanwhile (taken late: θ gone)', async () => {
    const job = lease('late'); // θ of step 3 is never written: the coordinator has moved on
    const coordinator = connection();
    const clock = connection();
    // The holder's clock: its first read sees step 3 of set 5, and the coordinator announces set 6 right after.
    let reads = 0;
    const racing: Pick<TensorConnection, 'awaitAnnounce'> = {
      awaitAnnounce: async (key, after, blockMs) => {
        const entries = await clock.awaitAnnounce(key, after, blockMs);
        if (reads++ === 0) await announce(coordinator, job, 4, 6);
        return entries;
      },
    };
    await announce(coordinator, job, 3, 5);
    const results = await new LeaseHolder(new ShardProcessor(connection(), DATA, 'late'), racing).hold(
      job,
      'lease-late',
      new AbortController().signal,
    );
    expect(results).toEqual([]);
    // No release (the set is over: nothing to hand back); the failure reports of step 3 are for a step long done.
    const pushed = await popAll(job.resultsKey);
    expect(pushed.map((m) => [m.step, m.kind ?? 'report', typeof m.error])).toEqual([
      [3, 'report', 'string'],
      [3, 'report', 'string'],
    ]);
  });

  it('hands a lease that fails back, from the step it failed on (the coordinator recomputes it at once)', async () => {
    const job = lease('i', { dataset: 'nowhere' });
    const coordinator = connection();
    const held = new LeaseHolder(new ShardProcessor(connection(), DATA, 'i'), connection()).hold(
      job,
      'lease-i',
      new AbortController().signal,
    );
    await announce(coordinator, job, 3, 5);
    await expect(held).rejects.toThrow(/dataset "nowhere"/);
    const pushed = await popAll(job.resultsKey);
    expect(pushed).toEqual([
      expect.objectContaining({ step: 3, shard: 1, error: expect.stringMatching(/nowhere/) }),
      expect.objectContaining({ step: 3, shard: 2, error: expect.stringMatching(/nowhere/) }),
      { v: 1, kind: 'release', run: 'r1', step: 3, lease: 'lease-i', worker: 'i' },
    ]);
  });

  it('a stepping lease: steps θ itself, STEPPING_LEAD steps ahead, giving the results one-step jobs give from the coordinator’s θ', async () => {
    const job = lease('s', { stepping: true, shard: 0, count: 3, stateKey: `${prefix}s:optimizer:2`, stateBuffers: 2, stateT: 2 });
    const coordinator = connection();
    // The coordinator's side: θ_2 and the Adam state at step 2, written as the coordinator writes them.
    const { model, optimizer } = makeReplicaFrom(replicaSpecFor(job));
    model.params.set(new Model(SPEC, { seed: 3 }).params);
    const n = model.params.length;
    const state = Float32Array.from({ length: 2 * n }, (_, i) => (i < n ? Math.sin(i) * 1e-3 : Math.abs(Math.cos(i)) * 1e-6));
    optimizer.setState({ name: 'adam', hyper: optimizer.hyper, t: 2, buffers: [state.slice(0, n), state.slice(n)] });
    await coordinator.set(`${job.paramsPrefix}2`, encodeParams(model.params), 60_000);
    await coordinator.set(job.stateKey, encodeParams(state), 60_000);
    const held = new LeaseHolder(new ShardProcessor(connection(), DATA, 'stepper'), connection()).hold(
      job,
      'lease-s',
      new AbortController().signal,
    );
    await announce(coordinator, job, 2, 5);
    // Steps 2, 3 and 4 without another announcement (θ_3, θ_4 are never written), then a wait for step 3's.
    await untilPushed(job.resultsKey, 1 + STEPPING_LEAD);
    await new Promise((r) => setTimeout(r, 150));
    expect(await redis.llen(job.resultsKey)).toBe(1 + STEPPING_LEAD);
    await announce(coordinator, job, 3, 5);
    const results = await held;
    expect(results.map((r) => [r.step, r.shard, r.through])).toEqual([[2, 0, 2], [3, 0, 2], [4, 0, 2], [5, 0, 2]]); // prettier-ignore
    const pushed = (await redis.lrangeBuffer(job.resultsKey, 0, -1)).map((m) => readResultMessage(m));
    await redis.del(job.resultsKey);
    // Each step as the coordinator takes it: the θ it was computed from is the coordinator's θ_t (digest), its sum
    // is what a one-step job of the three shards computes from θ_t, and θ_t+1 is θ_t stepped by 0 + that sum.
    const sum = optimizer.gradientSum();
    for (const [i, { header, gradient }] of pushed.entries()) {
      const step = 2 + i;
      expect(header).toMatchObject({ step, params: paramsDigest(model.params) });
      await coordinator.set(`${job.paramsPrefix}${step}`, encodeParams(model.params), 60_000);
      const plan = planStep(512, 64, 3, step);
      const processor = new ShardProcessor(connection(), DATA, 'direct');
      const direct = await processor.processLeased(leaseStepJob(job, step, plan.epoch, plan.shards));
      await processor.flush();
      const [message] = (await redis.lrangeBuffer(job.resultsKey, 0, -1)).map((m) => readResultMessage(m));
      await redis.del(job.resultsKey);
      expect(direct).toHaveLength(1);
      expect(Buffer.from(gradient).equals(Buffer.from(message.gradient)), `step ${step}: the same bits as a one-step job`).toBe(true);
      sum.fill(0);
      addInto(sum, new Float32Array(new Uint8Array(gradient).buffer));
      optimizer.step(model.params, sum, plan.batchSize);
    }
  });

  it('a round lease: computes each announced round of its replicas as a round job of them, from the states it kept', async () => {
    // Replicas 1..2 of 3, rounds of 2 steps from step 2: rounds 2, 4 and 6 of the epoch of 8 steps; Adam.
    const stateKeys = [`${prefix}r:state:2:1`, `${prefix}r:state:2:2`];
    const job = lease('r', { steps: 6, rounds: 2, stateBuffers: 2, stateKeys, stateTs: [2, 1] });
    const coordinator = connection();
    const n = new Model(SPEC).params.length;
    const state = (seed: number) => Float32Array.from({ length: 2 * n }, (_, i) => (i < n ? Math.sin(i + seed) * 1e-3 : 1e-6));
    for (const [i, key] of stateKeys.entries()) await coordinator.set(key, encodeParams(state(i)), 60_000);
    const theta = (step: number) => new Model(SPEC, { seed: step }).params;
    const holder = new LeaseHolder(new ShardProcessor(connection(), DATA, 'rounds'), connection());
    const held = holder.hold(job, 'lease-r', new AbortController().signal);
    for (const [i, step] of [2, 4, 6].entries()) {
      await coordinator.set(`${job.paramsPrefix}${step}`, encodeParams(theta(step)), 60_000);
      await announce(coordinator, job, step, 5);
      await untilPushed(job.resultsKey, 2 * (i + 1)); // the next round once this one's two replicas are in
    }
    const results = await held;
    expect(results.map((r) => [r.step, r.shard])).toEqual([[2, 1], [2, 2], [4, 1], [4, 2], [6, 1], [6, 2]]); // prettier-ignore
    const pushed = (await redis.lrangeBuffer(job.resultsKey, 0, -1)).map((m) => readResultMessage(m));
    await redis.del(job.resultsKey);
    // Round 4 as a round job of replicas 1..2 computes it from the states that round 2's results carried.
    const keys4 = [`${prefix}r:state:4:1`, `${prefix}r:state:4:2`];
    for (const [i, key] of keys4.entries()) {
      await coordinator.set(key, encodeParams(new Float32Array(new Uint8Array(pushed[i].gradient).buffer).subarray(n)), 60_000);
    }
    const stateTs = pushed.slice(0, 2).map((m) => m.header.stateT as number);
    expect(stateTs).toEqual([4, 4]); // an inner step counter is the global step it reached
    const processor = new ShardProcessor(connection(), DATA, 'direct');
    const direct = await processor.processRound(leaseRoundJob(job, 4, 2, { stateKeys: keys4, stateTs }));
    await processor.flush();
    const again = (await redis.lrangeBuffer(job.resultsKey, 0, -1)).map((m) => readResultMessage(m));
    await redis.del(job.resultsKey);
    expect(direct.map((r) => [r.step, r.shard, r.stateT])).toEqual([[4, 1, 6], [4, 2, 6]]); // prettier-ignore
    for (const i of [0, 1]) {
      expect(Buffer.from(again[i].gradient).equals(Buffer.from(pushed[2 + i].gradient)), `replica ${1 + i}: Δ and state`).toBe(true);
    }

    // Taken late (round 2 is over, round 4 announced): it has not the replicas' states, and hands the lease back.
    const late = lease('r2', { steps: 6, rounds: 2, stateBuffers: 2, stateKeys, stateTs: [2, 1] });
    for (const step of [2, 4]) await announce(coordinator, late, step, 5);
    const none = await new LeaseHolder(new ShardProcessor(connection(), DATA, 'late'), connection()).hold(
      late,
      'lease-r2',
      new AbortController().signal,
    );
    expect(none).toEqual([]);
    expect(await popAll(late.resultsKey)).toEqual([{ v: 1, kind: 'release', run: 'r1', step: 4, lease: 'lease-r2', worker: 'late' }]);
  });

  it('refuses a lease across an epoch’s end', async () => {
    const holder = new LeaseHolder(new ShardProcessor(connection(), DATA, 'x'), connection());
    const job = lease('e', { step: 6, steps: 4 });
    await expect(holder.hold(job, 'lease-e', new AbortController().signal)).rejects.toThrow(
      /steps \[6, 10\) are not within one epoch of 8 steps/,
    );
    expect(await popAll(job.resultsKey)).toEqual([expect.objectContaining({ kind: 'release', step: 6, lease: 'lease-e' })]);
  });
});
