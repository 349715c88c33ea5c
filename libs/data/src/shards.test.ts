import { describe, expect, it } from 'vitest';
import { DataError } from './data-error.js';
import { epochOrder } from './epoch-order.js';
import { checkBatchSize, checkShardCount, planStep, shardRange, stepsPerEpoch } from './shards.js';

describe('stepsPerEpoch', () => {
  it.each([
    [60000, 64, 938],
    [60000, 100, 600],
    [1, 64, 1],
    [64, 64, 1],
    [65, 64, 2],
  ])('n %i with batch %i has %i steps', (n, batch, steps) => {
    expect(stepsPerEpoch(n, batch)).toBe(steps);
  });
});

describe('shardRange', () => {
  it('splits 10 samples into 3 contiguous shards of 3, 3, 4', () => {
    expect([0, 1, 2].map((k) => shardRange(10, 3, k))).toEqual([
      [0, 3],
      [3, 6],
      [6, 10],
    ]);
  });

  it.each([
    [64, 1],
    [64, 3],
    [64, 64],
    [100, 7],
    [5, 8],
    [0, 4],
  ])('covers a batch of %i with %i shards contiguously, sizes differing by at most 1', (b, shards) => {
    const ranges = Array.from({ length: shards }, (_, k) => shardRange(b, shards, k));
    expect(ranges[0][0]).toBe(0);
    expect(ranges[shards - 1][1]).toBe(b);
    for (let k = 1; k < shards; k++) expect(ranges[k][0]).toBe(ranges[k - 1][1]);
    const sizes = ranges.map(([s, e]) => e - s);
    expect(Math.max(...sizes) - Math.min(...sizes)).toBeLessThanOrEqual(1);
  });

  it('rejects a shard index outside [0, K)', () => {
    expect(() => shardRange(10, 3, 3)).toThrow('shardRange: shard 3 is not in [0, 3)');
  });
});

describe('planStep', () => {
  it('maps global steps to epochs, with a partial last batch', () => {
    // n 10, batch 4: steps of 4, 4, 2 per epoch
    expect(planStep(10, 4, 2, 2)).toEqual({
      epoch: 0,
      stepInEpoch: 2,
      batchStart: 8,
      batchSize: 2,
      shards: [
        [8, 9],
        [9, 10],
      ],
    });
    expect(planStep(10, 4, 2, 3)).toEqual({
      epoch: 1,
      stepInEpoch: 0,
      batchStart: 0,
      batchSize: 4,
      shards: [
        [0, 2],
        [2, 4],
      ],
    });
  });

  it('leaves trailing shards empty only when the last batch has fewer samples than shards', () => {
    const last = planStep(9, 4, 3, 2); // one sample left for 3 shards
    expect(last.batchSize).toBe(1);
    expect(last.shards).toEqual([
      [8, 8],
      [8, 8],
      [8, 9],
    ]);
    for (let step = 0; step < 2; step++) {
      for (const [s, e] of planStep(9, 4, 3, step).shards) expect(e - s).toBeGreaterThan(0);
    }
  });

  it.each([
    [1, 1, 1],
    [10, 4, 3],
    [100, 64, 5],
    [257, 32, 7],
    [60, 20, 20],
    [1000, 128, 6],
    [13, 5, 5],
  ])('uses every sample exactly once per epoch: n %i, batch %i, shards %i', (n, batch, shards) => {
    const steps = stepsPerEpoch(n, batch);
    for (const epoch of [0, 1]) {
      const order = epochOrder(5, epoch, n);
      const seen = new Uint8Array(n);
      for (let s = 0; s < steps; s++) {
        const plan = planStep(n, batch, shards, epoch * steps + s);
        expect(plan.epoch).toBe(epoch);
        expect(plan.batchSize).toBe(s < steps - 1 ? batch : n - (steps - 1) * batch);
        let covered = 0;
        let next = plan.batchStart;
        for (const [start, end] of plan.shards) {
          expect(start).toBe(next); // contiguous, in shard order
          next = end;
          for (let p = start; p < end; p++) seen[order[p]]++;
          covered += end - start;
        }
        expect(covered).toBe(plan.batchSize);
      }
      expect(seen.every((c) => c === 1)).toBe(true);
    }
  });

  it('rejects more shards than the batch has samples', () => {
    expect(() => planStep(100, 64, 65, 0)).toThrow(
      new DataError('65 shards exceed a batch of 64: each shard needs at least one sample; use 64 shards or fewer', { about: 'shards' }),
    );
  });

  it('rejects a negative global step', () => {
    expect(() => planStep(100, 10, 2, -1)).toThrow(RangeError);
  });
});

describe('batch and shard checks', () => {
  it.each([0, -1, 2.5, Number.NaN])('rejects batch size %s, naming the batch setting', (batch) => {
    expect(() => checkBatchSize(batch)).toThrow(
      new DataError(`batch size ${batch} is not valid: expected a whole number >= 1`, { about: 'batch' }),
    );
  });

  it.each([0, 1.5])('rejects shard count %s, naming the shards setting', (shards) => {
    expect(() => checkShardCount(shards, 64)).toThrow(
      new DataError(`shard count ${shards} is not valid: expected a whole number >= 1`, { about: 'shards' }),
    );
  });

  it('accepts shards equal to the batch size', () => {
    expect(() => checkShardCount(64, 64)).not.toThrow();
  });
});
