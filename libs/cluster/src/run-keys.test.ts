import { ClusterConfigError } from './cluster-config-error.js';
import { describe, expect, it } from 'vitest';
import { checkName, runKeys, shardJobId } from './run-keys.js';

describe('runKeys', () => {
  const keys = runKeys('q1', 'r1');
  it('puts every key of a run under one prefix beside the queue’s own keys', () => {
    expect(keys).toMatchObject({ queue: 'q1', runId: 'r1', prefix: 'gradq:q1:run:r1:' });
    expect(keys.params(7)).toBe('gradq:q1:run:r1:params:7');
    expect(keys.results).toBe('gradq:q1:run:r1:results');
  });
  it('gives runs on the same queue prefixes that do not contain each other', () => {
    expect(runKeys('q1', 'r10').prefix.startsWith(keys.prefix)).toBe(false);
  });
  it.each(['a', 'A-z_0.9', 'x'.repeat(64)])('accepts the name "%s"', (good) => {
    expect(() => runKeys(good, good)).not.toThrow();
  });
  it.each(['a:b', 'has space', 'x'.repeat(65), '', 'star*', 'new\nline'])('rejects the name %j with the value in the message', (bad) => {
    expect(() => runKeys(bad, 'r1')).toThrow(`invalid queue "${bad}"`);
    expect(() => runKeys('q', bad)).toThrow(`invalid run id "${bad}"`);
    expect(() => checkName('queue', bad)).toThrow(ClusterConfigError);
  });
});

describe('shardJobId', () => {
  it('is unique per (run, step, shard, attempt) and never contains a colon (BullMQ forbids it)', () => {
    const ids = new Set<string>();
    for (const r of ['r1', 'r1.1', 'r11']) {
      for (const s of [0, 1, 10, 11]) for (const k of [0, 1, 11]) for (const a of [0, 1]) ids.add(shardJobId(r, s, k, a));
    }
    expect(ids.size).toBe(3 * 4 * 3 * 2);
    for (const id of ids) expect(id).not.toContain(':');
  });
  it('is not an integer (BullMQ rejects integer custom ids)', () => {
    expect(shardJobId('1', 2, 3, 4)).not.toMatch(/^\d+$/);
  });
});
