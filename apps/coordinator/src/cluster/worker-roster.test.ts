import { QUEUE_PREFIX, RedisDeployment, type ShardJob, type ShardResult } from '@gradq/cluster';
import type { Queue } from 'bullmq';
import { describe, expect, it } from 'vitest';
import { UNRESPONSIVE_MS, WorkerRoster } from './worker-roster.js';

/**
 * A queue with BullMQ's `prefix` whose client list holds workers named `names` (null: a worker without a name),
 * connected for `ageS` s, named as BullMQ names its workers' connections.
 */
function queueWith(workers: Array<{ name: string | null; ageS: number }>, prefix = QUEUE_PREFIX): Queue<ShardJob, ShardResult[]> {
  const base = `${prefix}:${Buffer.from('q1').toString('base64')}`;
  const clients = workers.map((w) => ({ name: 'q1', rawname: w.name === null ? base : `${base}:w:${w.name}`, age: String(w.ageS) }));
  return { name: 'q1', opts: { prefix }, getWorkers: async () => clients } as unknown as Queue<ShardJob, ShardResult[]>;
}

describe('WorkerRoster', () => {
  it(`calls a connected worker unresponsive when it has sent nothing for ${UNRESPONSIVE_MS / 1000} s, nor connected since`, async () => {
    const roster = new WorkerRoster();
    const now = 100_000;
    roster.delivered('busy', now - 2000);
    roster.failed('failing', now - 3000); // a failure report is an answer too
    roster.delivered('frozen', now - UNRESPONSIVE_MS - 1);
    const queue = queueWith([
      { name: 'busy', ageS: 60 },
      { name: 'failing', ageS: 60 },
      { name: 'frozen', ageS: 60 },
      { name: 'never-answered', ageS: 60 },
      { name: 'just-joined', ageS: 3 },
      { name: 'frozen-then-reconnected', ageS: 4 },
      { name: null, ageS: 600 }, // nothing to tell it by: not judged
    ]);
    roster.delivered('frozen-then-reconnected', now - 60_000);
    expect(await roster.survey(queue, now)).toEqual({ connected: 7, unresponsive: ['frozen', 'never-answered'] });
  });

  it('tells workers by name under a Redis Cluster’s hash-tagged prefix too', async () => {
    const roster = new WorkerRoster();
    const now = 100_000;
    roster.delivered('busy', now - 2000);
    const queue = queueWith(
      [
        { name: 'busy', ageS: 60 },
        { name: 'frozen', ageS: 60 },
      ],
      RedisDeployment.of('redis://127.0.0.1:7000', 'cluster').queuePrefix('q1'),
    );
    expect(await roster.survey(queue, now)).toEqual({ connected: 2, unresponsive: ['frozen'] });
  });

  it('says when a failing streak starts, once per worker, until the worker delivers a result', () => {
    const roster = new WorkerRoster();
    expect([roster.failed('a'), roster.failed('a'), roster.failed('b'), roster.failed('a')]).toEqual([true, false, true, false]);
    roster.delivered('a');
    expect([roster.failed('a'), roster.failed('b')]).toEqual([true, false]);
  });

  it('remembers a bounded number of names, whatever names results claim', async () => {
    const roster = new WorkerRoster();
    const now = 100_000;
    roster.delivered('real', now);
    for (let i = 0; i < 5000; i++) roster.delivered(`forged-${i}`, now);
    // 'real' was forgotten (least recently heard): it counts as never heard from.
    expect(await roster.survey(queueWith([{ name: 'real', ageS: 60 }]), now)).toEqual({ connected: 1, unresponsive: ['real'] });
  });
});
