import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { decodeGradient, encodeParams, InvalidMessageError, validateShardJob, type ShardJob } from '@gradq/cluster';
import { epochOrder, gatherBatch, limitSamples, loadDataset } from '@gradq/data';
import { Model, paramsSha256 } from '@gradq/nn';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ShardProcessor } from './shard-processor.js';

const DATA = fileURLToPath(new URL('../../../../shared/data', import.meta.url));
const redis = new Redis('redis://127.0.0.1:6379');
const prefix = `test-${randomUUID()}:`;
const model = new Model('mlp:784-16-10', { seed: 3 });
let processor: ShardProcessor;

function job(patch: Partial<ShardJob> = {}): ShardJob {
  return {
    v: 1, run: 'r1', step: 4, shard: 1, attempt: 0, dataset: 'mnist', trainSamples: 512, seed: 7, epoch: 1, start: 40, end: 72,
    model: 'mlp:784-16-10', paramsKey: `${prefix}params:4`, gradKey: `${prefix}grad:4:1`, ...patch,
  }; // prettier-ignore
}

beforeAll(async () => {
  await redis.set(`${prefix}params:4`, Buffer.from(encodeParams(model.params)));
  processor = new ShardProcessor(redis, DATA, 'test-worker');
});
afterAll(async () => {
  const keys = await redis.keys(`${prefix}*`);
  if (keys.length) await redis.del(...keys);
  await redis.quit();
});

describe('ShardProcessor', () => {
  it('writes the same gradient sum as computing the shard directly, bit for bit', async () => {
    const result = await processor.process(job());
    // Reference: the same samples through a model with the same parameters, in this process.
    const train = limitSamples((await loadDataset('mnist', { dataDir: DATA })).train, 512);
    const x = new Float32Array(32 * 784);
    const y = new Uint8Array(32);
    gatherBatch(train, epochOrder(7, 1, 512), 40, 72, x, y);
    const reference = new Model('mlp:784-16-10', { seed: 3 });
    const stats = reference.forwardBackward(x, y, 32);
    const grads = decodeGradient(
      await redis.getBuffer(job().gradKey),
      { run: 'r1', step: 4, shard: 1, count: 32 },
      reference.grads.length,
      'g',
    );
    expect(paramsSha256(grads)).toBe(paramsSha256(reference.grads));
    expect(result).toMatchObject({
      run: 'r1',
      step: 4,
      shard: 1,
      count: 32,
      lossSum: stats.lossSum,
      correct: stats.correct,
      worker: 'test-worker',
    });
    expect(await redis.pttl(job().gradKey)).toBeGreaterThan(0);
  });

  it('writes identical bytes when a job is delivered twice', async () => {
    await processor.process(job());
    const first = await redis.getBuffer(job().gradKey);
    await processor.process(job({ attempt: 0 }));
    expect((await redis.getBuffer(job().gradKey))?.equals(first as Buffer)).toBe(true);
  });

  it('keeps θ of the version it holds and fetches a new version only when asked for it', async () => {
    await processor.process(job());
    await redis.del(`${prefix}params:4`); // cached: a job for the same version needs no fetch
    await expect(processor.process(job({ shard: 2, start: 72, end: 100, gradKey: `${prefix}grad:4:2` }))).resolves.toMatchObject({
      count: 28,
    });
    const missing = job({ step: 5, paramsKey: `${prefix}params:5`, gradKey: `${prefix}grad:5:1` });
    await expect(processor.process(missing)).rejects.toThrow(`${prefix}params:5: missing`);
    await expect(processor.process(missing)).rejects.toBeInstanceOf(InvalidMessageError);
  });

  it('refuses a job whose samples lie outside the run', () => {
    expect(() => validateShardJob(job({ end: 600 }))).toThrow('range [40, 600) is not within 512 samples');
  });
});
