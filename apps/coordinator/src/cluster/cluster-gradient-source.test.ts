import {
  encodeResultMessage,
  RedisConnectionError,
  RedisReplyError,
  runKeys,
  type ShardJob,
  type ShardResult,
  type TensorConnection,
} from '@gradq/cluster';
import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import type { StepPlan } from '@gradq/train';
import { ClusterGradientSource } from './cluster-gradient-source.js';

// The source against stand-ins for its connections and queue: what it does when the tensor connection fails.
const N = 40; // parameters
const keys = runKeys('q', 'r1');
const plan: StepPlan = {
  globalStep: 3,
  epoch: 0,
  stepInEpoch: 3,
  batchStart: 12,
  batchSize: 4,
  shards: [[12, 16]],
  order: new Uint32Array(16),
};
const gradient = Float32Array.from({ length: N }, (_, i) => i - 20);
const result: ShardResult = {
  v: 4, run: 'r1', step: 3, shard: 0, through: 0, attempt: 0, codec: 'none', count: 4, lossSum: 2.5, correct: 3, worker: 'w', fetchMs: 0, computeMs: 1, uploadMs: 0,
}; // prettier-ignore

/** A tensor connection whose commands fail as `failures` says, in order, then work; BLPOP pops the shard's result. */
function tensors(failures: { set?: Error[]; blpop?: Error[] }) {
  const calls: string[] = [];
  const stub = {
    calls,
    set: async () => {
      calls.push('SET');
      const e = failures.set?.shift();
      if (e) throw e;
    },
    unlink: async () => void calls.push('UNLINK'),
    blpop: async (_key: string, _timeout: number, into: (length: number) => Uint8Array | 'skip') => {
      calls.push('BLPOP');
      const e = failures.blpop?.shift();
      if (e) throw e;
      const message = encodeResultMessage(result, gradient);
      const target = into(message.length) as Uint8Array;
      target.set(message);
      return target.subarray(0, message.length);
    },
  };
  return stub;
}

function source(stub: ReturnType<typeof tensors>, log: string[]) {
  const queue = {
    addBulk: async (jobs: unknown[]) => void stub.calls.push(`addBulk ${jobs.length}`),
    getJob: async () => ({}),
    getWorkersCount: async () => 1,
  } as unknown as Queue<ShardJob, ShardResult[]>;
  const run = { dataset: 'mnist', trainSamples: 16, seed: 1, model: 'mlp:4-4-2', shift: 0, codec: 'none' as const };
  return new ClusterGradientSource({} as Redis, stub as unknown as TensorConnection, queue, keys, run, N, (l) => log.push(l), {
    giveUpMs: 60_000,
  });
}

describe('ClusterGradientSource on a failing tensor connection', () => {
  it('writes θ again after a lost connection, logging once and once more when it works, before adding the jobs', async () => {
    const lost = () => new RedisConnectionError('Redis at redis://x: connection lost (ECONNRESET)');
    const stub = tensors({ set: [lost(), lost()] });
    const log: string[] = [];
    const sum = new Float32Array(N);
    await expect(source(stub, log).step(plan, new Float32Array(N), sum)).resolves.toEqual({ lossSum: 2.5, correct: 3 });
    expect(stub.calls).toEqual(['SET', 'UNLINK', 'SET', 'UNLINK', 'SET', 'UNLINK', 'addBulk 1', 'BLPOP']);
    expect(log).toEqual([
      'step 3: writing θ failed (Redis at redis://x: connection lost (ECONNRESET)); retrying',
      'step 3: writing θ: Redis reachable again',
    ]);
    expect(Array.from(sum)).toEqual(Array.from(gradient));
  });

  it('polls again after a lost BLPOP', async () => {
    const stub = tensors({ blpop: [new RedisConnectionError('Redis at redis://x: connection lost (no reply to BLPOP in 3000 ms)')] });
    const log: string[] = [];
    await expect(source(stub, log).step(plan, new Float32Array(N), new Float32Array(N))).resolves.toEqual({ lossSum: 2.5, correct: 3 });
    expect(stub.calls.filter((c) => c === 'BLPOP')).toHaveLength(2);
    expect(log).toEqual([
      'step 3: waiting for results failed (Redis at redis://x: connection lost (no reply to BLPOP in 3000 ms)); retrying',
      'step 3: waiting for results: Redis reachable again',
    ]);
  });

  it('stops the step on an error reply: sending the command again would not help', async () => {
    const stub = tensors({
      blpop: [new RedisReplyError('Redis BLPOP: WRONGTYPE Operation against a key holding the wrong kind of value')],
    });
    await expect(source(stub, []).step(plan, new Float32Array(N), new Float32Array(N))).rejects.toThrow('Redis BLPOP: WRONGTYPE');
  });
});
