import { describe, expect, it } from 'vitest';
import { MAX_LEASE_STEPS } from '@gradq/cluster';
import { AUTO_LEASE_STEPS, LeaseBook } from './lease-book.js';

describe('LeaseBook', () => {
  it('holds the steps of a set with ⌈K/N⌉ shards a lease, never past the epoch, about 1 s of steps', () => {
    const book = new LeaseBook('r1', 0);
    // First step: its duration unknown, a set of one step.
    const first = book.forStep(0, 4, 100, 1, Number.POSITIVE_INFINITY);
    expect(first.made).toBe(true);
    expect(first.set).toMatchObject({ first: 0, end: 1, leases: [{ shard: 0, count: 4 }] });
    // 100 ms steps: 10 steps a set.
    const second = book.forStep(1, 4, 100, 2, 100);
    expect(second.set).toMatchObject({
      first: 1,
      end: 11,
      leases: [
        { shard: 0, count: 2 },
        { shard: 2, count: 2 },
      ],
    });
    expect(second.set.set).toBe(first.set.set + 1);
    expect(new Set(second.set.leases.map((l) => l.id)).size).toBe(2);
    expect(book.forStep(5, 4, 100, 2, 100)).toMatchObject({ made: false, set: second.set });
    // Fast steps: at most AUTO_LEASE_STEPS, and not past the epoch's end (step 100).
    expect(book.forStep(11, 4, 100, 2, 1).set).toMatchObject({ first: 11, end: 11 + AUTO_LEASE_STEPS });
    expect(book.forStep(75, 4, 100, 2, 1).set).toMatchObject({ first: 75, end: 100 });
    // Three shards for two workers: a lease of two and one of one.
    expect(book.forStep(100, 3, 100, 2, 1).set.leases).toEqual([
      expect.objectContaining({ shard: 0, count: 2 }),
      expect.objectContaining({ shard: 2, count: 1 }),
    ]);
  });

  it('makes sets of one step while no worker is counted, so that a lone worker can take every lease in turn', () => {
    const book = new LeaseBook('r1', 0);
    // Count unknown (0): K leases of one shard, for one step, however fast the steps.
    expect(book.forStep(8, 2, 100, 0, 1).set).toMatchObject({ first: 8, end: 9, leases: [{ count: 1 }, { count: 1 }] });
    expect(book.forStep(9, 2, 100, 0, 1)).toMatchObject({ made: true, set: { first: 9, end: 10 } });
    // --lease-steps N too.
    expect(new LeaseBook('r1', 16).forStep(0, 2, 100, 0, 1).set).toMatchObject({ first: 0, end: 1 });
    // Counted: the usual length.
    expect(book.forStep(10, 2, 100, 1, 1).set).toMatchObject({ first: 10, end: 74, leases: [{ count: 2 }] });
  });

  it('of rounds: up to autoCap steps (AUTO_LEASE_STEPS rounds), never more than MAX_LEASE_STEPS (a lease job’s limit)', () => {
    const rounds = new LeaseBook('r1', 0, AUTO_LEASE_STEPS * 8); // local:8
    expect(rounds.forStep(0, 2, 10_000, 2, 2).set).toMatchObject({ first: 0, end: 500 }); // 1 s of 2 ms steps
    expect(rounds.forStep(504, 2, 10_000, 2, 0.01).set).toMatchObject({ first: 504, end: 504 + AUTO_LEASE_STEPS * 8 });
    const long = new LeaseBook('r1', 0, AUTO_LEASE_STEPS * 100); // local:100, an epoch of 60,000 steps
    expect(long.forStep(0, 2, 60_000, 2, 0.01).set).toMatchObject({ first: 0, end: MAX_LEASE_STEPS });
  });

  it('makes a new set when the grouping changes or after end(), and knows only the current set’s leases', () => {
    const book = new LeaseBook('r1', 8);
    const a = book.forStep(0, 4, 100, 2, 1).set;
    expect(a.end).toBe(8);
    expect(book.lease(a.leases[1].id)).toEqual(a.leases[1]);
    const b = book.forStep(1, 4, 100, 1, 1); // a worker left: one lease of 4
    expect(b).toMatchObject({ made: true, replaced: a.leases.map((l) => l.id) });
    expect(book.lease(a.leases[1].id)).toBeUndefined();
    expect(book.forStep(2, 4, 100, 1, 1)).toMatchObject({ made: false, replaced: [] });
    expect(book.end()).toBe(b.set.set);
    expect(book.end()).toBeUndefined(); // ended already
    const c = book.forStep(3, 4, 100, 1, 1);
    expect(c).toMatchObject({ made: true, set: { first: 3, end: 11 } });
    expect(book.ids).toEqual([c.set.leases[0].id]);
  });

  it('after too many leases for the workers (tooMany), makes sets for the leases that found a holder until the count changes', () => {
    const book = new LeaseBook('r1', 8);
    const a = book.forStep(0, 4, 100, 4, 1).set; // four workers counted: four leases of one shard
    expect(a.leases).toHaveLength(4);
    book.tooMany(2); // two were held, two left queued when one was handed back
    book.end();
    expect(book.forStep(1, 4, 100, 4, 1).set.leases.map((l) => l.count)).toEqual([2, 2]);
    expect(book.forStep(2, 4, 100, 4, 1).made).toBe(false);
    // The count changes (a worker joined): leases for the count again.
    expect(book.forStep(3, 4, 100, 3, 1).set.leases.map((l) => l.count)).toEqual([2, 2]);
    expect(book.forStep(4, 4, 100, 4, 1).set.leases.map((l) => l.count)).toEqual([1, 1, 1, 1]);
    // No count yet (0): as many leases as the cap, once one was handed back with others queued.
    const fresh = new LeaseBook('r2', 8);
    fresh.forStep(0, 4, 100, 0, 1);
    fresh.tooMany(1);
    fresh.end();
    expect(fresh.forStep(1, 4, 100, 0, 1).set.leases.map((l) => l.count)).toEqual([4]);
  });
});
