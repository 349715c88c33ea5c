import { describe, expect, it } from 'vitest';
import { ConnectedWorkers, FIRST_REFRESH_MS, shardsPerJob, WORKER_COUNT_REFRESH_MS } from './job-grouping.js';

describe('shardsPerJob', () => {
  it.each([
    [4, 0, 1], // no worker counted yet: as with several
    [4, 1, 4],
    [7, 1, 7],
    [4, 2, 2],
    [4, 3, 2],
    [5, 2, 3],
    [4, 9, 1],
    [1, 5, 1],
  ])('%i shards, %i workers: %i shards a job', (shards, workers, expected) => expect(shardsPerJob(shards, workers)).toBe(expected));
});

describe('ConnectedWorkers', () => {
  /** A queue whose getWorkersCount answers from `answers` in turn (an Error rejects), counting the calls. */
  function queue(...answers: Array<number | Error>) {
    const q = {
      calls: 0,
      getWorkersCount: async (): Promise<number> => {
        const a = answers[Math.min(q.calls++, answers.length - 1)];
        if (a instanceof Error) throw a;
        return a;
      },
    };
    return q;
  }

  it('waits for the first count, then asks again in the background: soon at first, then once it is WORKER_COUNT_REFRESH_MS old', async () => {
    const q = queue(0, 1, 2, 3);
    const workers = new ConnectedWorkers(q);
    expect(await workers.current(0)).toBe(0);
    expect(await workers.current(FIRST_REFRESH_MS - 1)).toBe(0);
    expect(q.calls).toBe(1);
    expect(await workers.current(FIRST_REFRESH_MS)).toBe(0); // asked now, answered after
    expect(q.calls).toBe(2);
    await new Promise((r) => setTimeout(r, 0));
    expect(await workers.current(FIRST_REFRESH_MS + 1)).toBe(1);
    expect(await workers.current(3 * FIRST_REFRESH_MS)).toBe(1); // the next ask: 2 × FIRST_REFRESH_MS later
    await new Promise((r) => setTimeout(r, 0));
    expect(await workers.current(3 * FIRST_REFRESH_MS + 1)).toBe(2);
    // The interval doubles up to WORKER_COUNT_REFRESH_MS: after many asks, not before that long.
    for (let i = 0; i < 10; i++) workers['asks']++;
    expect(await workers.current(3 * FIRST_REFRESH_MS + WORKER_COUNT_REFRESH_MS - 1)).toBe(2);
    expect(q.calls).toBe(3);
    await workers.current(3 * FIRST_REFRESH_MS + WORKER_COUNT_REFRESH_MS);
    await new Promise((r) => setTimeout(r, 0));
    expect(await workers.current(3 * FIRST_REFRESH_MS + WORKER_COUNT_REFRESH_MS + 1)).toBe(3);
  });

  it('keeps the last count when asking fails, and is 0 before any', async () => {
    const q = queue(new Error('down'), 4, new Error('down again'));
    const workers = new ConnectedWorkers(q);
    expect(await workers.current(0)).toBe(0);
    expect(await workers.current(WORKER_COUNT_REFRESH_MS)).toBe(4);
    await workers.current(2 * WORKER_COUNT_REFRESH_MS);
    await new Promise((r) => setTimeout(r, 0));
    expect(q.calls).toBe(3);
    expect(await workers.current(2 * WORKER_COUNT_REFRESH_MS + 1)).toBe(4);
  });
});
