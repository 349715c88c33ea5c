import { encodeResidual, KEY_TTL_MS, runKeys, type TensorStore } from '@gradq/cluster';
import { describe, expect, it } from 'vitest';
import { ShardResidualKeys } from './shard-residuals.js';

const keys = runKeys('q', 'r1');
const SIZE = 8;

/** A Redis of keys in memory, for the residuals' GET and SET. */
function memoryTensors(): Pick<TensorStore, 'get' | 'set'> & { values: Map<string, Uint8Array> } {
  const values = new Map<string, Uint8Array>();
  return {
    values,
    get: async (key, into) => {
      const v = values.get(key);
      if (v === undefined) return null;
      const buffer = into(v.length);
      if (buffer === 'skip') throw new Error('unexpected skip');
      buffer.set(v);
      return buffer;
    },
    set: async (key, bytes) => {
      values.set(key, Uint8Array.from(bytes));
    },
  };
}

/** What a worker does for attempt `attempt` at (step, shard): writes its residual (all bytes `fill`) under its out key. */
async function workerWrites(
  tensors: Pick<TensorStore, 'set'>,
  residuals: ShardResidualKeys,
  step: number,
  shard: number,
  attempt: number,
  fill: number,
): Promise<void> {
  const key = residuals.out(step, shard, attempt);
  await tensors.set(key, encodeResidual(new Uint8Array(SIZE).fill(fill), key), KEY_TTL_MS);
}

describe('ShardResidualKeys', () => {
  it('gives each attempt at a shard its own out key', () => {
    const residuals = new ShardResidualKeys(keys, SIZE);
    expect(new Set([residuals.out(4, 1, 0), residuals.out(4, 1, 1), residuals.out(4, 2, 0), residuals.out(5, 1, 0)]).size).toBe(4);
  });

  it('reads the residual of the attempt kept, whatever a rejected or late attempt of the same shard wrote after it', async () => {
    const tensors = memoryTensors();
    const residuals = new ShardResidualKeys(keys, SIZE);
    // Step 4, shard 1: attempt 1 (a retry after a timeout) is kept; attempt 0, late, writes after it.
    await workerWrites(tensors, residuals, 4, 1, 1, 11);
    await workerWrites(tensors, residuals, 4, 1, 0, 99);
    expect(residuals.accept(4, 1, 1)).toBeUndefined();
    expect(residuals.in(1)).toBe(residuals.out(4, 1, 1));
    const [, shard1] = await residuals.read(tensors, 2);
    expect(shard1).toEqual(new Uint8Array(SIZE).fill(11));
    // The next step's kept attempt 0 moves the shard on, and hands back the key it no longer needs.
    await workerWrites(tensors, residuals, 5, 1, 0, 12);
    expect(residuals.accept(5, 1, 0)).toBe(residuals.out(4, 1, 1));
    expect((await residuals.read(tensors, 2))[1]).toEqual(new Uint8Array(SIZE).fill(12));
  });
});
