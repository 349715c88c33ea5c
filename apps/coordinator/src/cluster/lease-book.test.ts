import { describe, expect, it } from 'vitest';
import { AUTO_LEASE_STEPS, LeaseBook } from './lease-book.js';

describe('LeaseBook', () => {
  it('holds the steps of a set with ⌈K/N⌉ shards a lease, never past the epoch, about 1 s of steps', () => {
    const book = new LeaseBook('r1', 0);
    // First step: its duration unknown, a set of one step.
    const first = book.forStep(0, 4, 100, 4, Number.POSITIVE_INFINITY);
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

  it('makes a new set when the grouping changes or after end(), and knows only the current set’s leases', () => {
    const book = new LeaseBook('r1', 8);
    const a = book.forStep(0, 4, 100, 2, 1).set;
    expect(a.end).toBe(8);
    expect(book.lease(a.leases[1].id)).toEqual(a.leases[1]);
    const b = book.forStep(1, 4, 100, 4, 1); // a worker left: one lease of 4
    expect(b.made).toBe(true);
    expect(book.lease(a.leases[1].id)).toBeUndefined();
    expect(book.forStep(2, 4, 100, 4, 1).made).toBe(false);
    book.end();
    const c = book.forStep(3, 4, 100, 4, 1);
    expect(c).toMatchObject({ made: true, set: { first: 3, end: 11 } });
    expect(book.ids).toEqual([c.set.leases[0].id]);
  });
});
