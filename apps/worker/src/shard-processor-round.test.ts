import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { encodeParams, readGradientInto, readResultMessage, TensorConnection, type RoundJob } from '@gradq/cluster';
import { limitSamples, loadDataset, type Split } from '@gradq/data';
import { Model } from '@gradq/nn';
import { makeReplicaFrom, replicaRound, replicaSpecFor, roundSteps, ShardInputs } from '@gradq/train';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ShardProcessor } from './shard-processor.js';

// ShardProcessor.processRound: local SGD replicas' rounds, by libs/train's replicaRound from θ and the states in Redis.

const DATA = fileURLToPath(new URL('../../../../shared/data', import.meta.url));
const SPEC = 'mlp:784-16-10';
const redis = new Redis('redis://127.0.0.1:6379');
const tensors = new TensorConnection('redis://127.0.0.1:6379');
const prefix = `test-round-${randomUUID()}:`;
let train: Split;

/**
 * Replicas 1 and 2 of the round of steps 4..7 (512 samples in batches of 64: 8 steps an epoch), with Adam's two
 * buffers; replica 2's state has taken one step fewer.
 */
function job(patch: Partial<RoundJob> = {}): RoundJob {
  return {
    v: 2, kind: 'round', run: 'r1', step: 4, steps: 4, shard: 1, replicas: 2, shards: 4, attempt: 0, dataset: 'mnist',
    trainSamples: 512, seed: 7, batch: 64, model: SPEC, shift: 1, optimizer: 'adam', lr: 0.01, schedule: 'cosine', warmup: 0,
    momentum: 0.9, weightDecay: 0, epochs: 2, paramsKey: `${prefix}params:4`, stateKeys: [`${prefix}state:4:1`, `${prefix}state:4:2`],
    stateBuffers: 2, stateTs: [4, 3], resultsKey: `${prefix}results`, ...patch,
  }; // prettier-ignore
}

const theta = new Model(SPEC, { seed: 3 }).params;
const n = theta.length;
const states = [1, 2].map((k) => new Float32Array(2 * n).map((_, i) => (i < n ? 1e-3 * Math.sin(k * i) : 1e-6 * (1 + Math.cos(k * i)))));

beforeAll(async () => {
  train = limitSamples((await loadDataset('mnist', { dataDir: DATA })).train, 512);
  await redis.set(job().paramsKey, encodeParams(theta));
  for (const [i, key] of job().stateKeys.entries()) await redis.set(key, encodeParams(states[i]));
});

afterAll(async () => {
  const keys = await redis.keys(`${prefix}*`);
  if (keys.length > 0) await redis.del(...keys);
  await redis.quit();
  await tensors.quit();
});

describe('ShardProcessor.processRound', () => {
  it('pushes, replica by replica, Δ_k and the new state of replicaRound run from the θ and states in Redis, bit for bit', async () => {
    const processor = new ShardProcessor(tensors, DATA, 'w1');
    const j = job();
    const results = await processor.processRound(j);
    await processor.flush();
    expect(results.map((r) => r.shard)).toEqual([1, 2]);
    for (const [i, k] of [1, 2].entries()) {
      const popped = await redis.blpopBuffer(j.resultsKey, 2);
      if (popped === null) throw new Error(`no result for replica ${k}`);
      const { header, gradient } = readResultMessage(popped[1]);
      const payload = new Float32Array(3 * n);
      readGradientInto(gradient, payload, 'test');
      // The in-process recipe, from the same inputs.
      const { model, optimizer } = makeReplicaFrom(replicaSpecFor(j));
      const buffers = [states[i].slice(0, n), states[i].slice(n)];
      const steps = roundSteps(512, 64, 4, 7, 4, 8);
      const t = j.stateTs[i];
      const r = replicaRound(model, optimizer, train, steps, k, theta, { ...optimizer.getState(), t, buffers }, new ShardInputs(), {
        seed: 7,
        shift: 1,
      });
      expect(header).toMatchObject({ kind: 'round', step: 4, shard: k, through: k, count: 64, steps: 4, stateT: 8, worker: 'w1' });
      expect(results[i]).toMatchObject({ lossSum: r.lossSum, correct: r.correct });
      expect(Buffer.from(payload.buffer, 0, 4 * n).equals(Buffer.from(r.delta.buffer, r.delta.byteOffset, 4 * n))).toBe(true);
      const state = new Float32Array([...r.state.buffers[0], ...r.state.buffers[1]]);
      expect(Buffer.from(payload.slice(n).buffer).equals(Buffer.from(state.buffer))).toBe(true);
    }
  });

  it('answers the replicas computed before one that fails, and reports the failure for that one and those after it', async () => {
    const processor = new ShardProcessor(tensors, DATA, 'w1');
    const missing = `${prefix}state:4:gone`;
    const j = job({
      shard: 0,
      replicas: 3,
      stateKeys: [job().stateKeys[0], missing, job().stateKeys[1]],
      stateTs: [4, 4, 3],
      resultsKey: `${prefix}results-${randomUUID()}`,
    });
    await expect(processor.processRound(j)).rejects.toThrow(`${missing}: missing`);
    await processor.flush();
    const headers = [];
    for (let i = 0; i < 3; i++) {
      const popped = await redis.blpopBuffer(j.resultsKey, 2);
      if (popped === null) throw new Error(`message ${i} missing`);
      headers.push(readResultMessage(popped[1]).header);
    }
    expect(headers[0]).toMatchObject({ kind: 'round', shard: 0, steps: 4 });
    expect(headers[1]).toMatchObject({ v: 2, shard: 1, error: expect.stringContaining(`${missing}: missing`) });
    expect(headers[2]).toMatchObject({ v: 2, shard: 2, error: expect.stringContaining(`${missing}: missing`) });
    expect(await redis.llen(j.resultsKey)).toBe(0);
  });

  it.each([
    ['a round that crosses an epoch end', { step: 6, steps: 4 }, /steps \[6, 10\) are not within one epoch of 8 steps/],
    ['a round past the run', { step: 16, steps: 1 }, /steps \[16, 17\) are not within one epoch/],
    ['a state buffer count that is not the optimizer’s', { optimizer: 'momentum' }, /2 state buffers, a momentum optimizer keeps 1/],
    ['an unknown dataset', { dataset: 'cifar' }, /dataset "cifar" is not one of/],
  ])('refuses %s, with a failure report for each replica', async (_name, patch, pattern) => {
    const processor = new ShardProcessor(tensors, DATA, 'w1');
    const j = job({ ...patch, resultsKey: `${prefix}results-${randomUUID()}` });
    await expect(processor.processRound(j)).rejects.toThrow(pattern);
    await processor.flush();
    for (const shard of [1, 2]) {
      const popped = await redis.blpopBuffer(j.resultsKey, 2);
      if (popped === null) throw new Error(`no failure report for replica ${shard}`);
      expect(readResultMessage(popped[1]).header).toMatchObject({ v: 2, step: j.step, shard, error: expect.stringMatching(pattern) });
    }
  });
});
