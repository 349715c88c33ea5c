import { describe, expect, it } from 'vitest';
import { runKeys, shardJobId } from './run-keys.js';

describe('runKeys', () => {
  const keys = runKeys('q1', 'r1');
  it('puts every key of a run under one prefix', () => {
    expect(keys.prefix).toBe('gradq:q1:run:r1:');
    expect(keys.params(7)).toBe('gradq:q1:run:r1:params:7');
    expect(keys.grad(7, 3)).toBe('gradq:q1:run:r1:grad:7:3');
  });
  it.each(['a:b', 'has space', 'x'.repeat(65), ''])('rejects the name "%s"', (bad) => {
    expect(() => runKeys(bad, 'r1')).toThrow(`invalid queue "${bad}"`);
    expect(() => runKeys('q', bad)).toThrow(`invalid run id "${bad}"`);
  });
});

describe('shardJobId', () => {
  it('has no colon (BullMQ forbids it) and differs per step, shard and attempt', () => {
    const ids = new Set<string>();
    for (const s of [0, 1, 10]) for (const k of [0, 1]) for (const a of [0, 1]) ids.add(shardJobId('r1', s, k, a));
    expect(ids.size).toBe(12);
    for (const id of ids) expect(id).not.toContain(':');
  });
});
