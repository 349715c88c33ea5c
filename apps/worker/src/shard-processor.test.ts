import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { decodeGradient, encodeParams, InvalidMessageError, KEY_TTL_MS, validateShardJob, type ShardJob } from '@gradq/cluster';
import { epochOrder, gatherBatch, limitSamples, loadDataset, type Split } from '@gradq/data';
import { Model, paramsSha256 } from '@gradq/nn';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ShardProcessor } from './shard-processor.js';

const DATA = fileURLToPath(new URL('../../../../shared/data', import.meta.url));
const SPEC = 'mlp:784-16-10';
const redis = new Redis('redis://127.0.0.1:6379');
let prefix: string;
let train: Split;
const theta4 = new Model(SPEC, { seed: 3 }).params;
const theta5 = new Model(SPEC, { seed: 4 }).params;

function job(patch: Partial<ShardJob> = {}): ShardJob {
  return {
    v: 1, run: 'r1', step: 4, shard: 1, attempt: 0, dataset: 'mnist', trainSamples: 512, seed: 7, epoch: 1, start: 40, end: 72,
    model: SPEC, paramsKey: `${prefix}params:4`, gradKey: `${prefix}grad:4:1`, ...patch,
  }; // prettier-ignore
}

/** The shard's gradient sum and stats computed directly in this process: the samples at positions [start, end). */
function reference(params: Float32Array, j: ShardJob) {
  const count = j.end - j.start;
  const x = new Float32Array(count * 784);
  const y = new Uint8Array(count);
  gatherBatch(train, epochOrder(j.seed, j.epoch, j.trainSamples), j.start, j.end, x, y);
  const model = new Model(SPEC, { seed: 99 });
  model.params.set(params);
  model.zeroGrads();
  const stats = model.forwardBackward(x, y, count);
  return { grads: model.grads, ...stats, count };
}

async function gradientAt(j: ShardJob): Promise<Float32Array> {
  return decodeGradient(
    await redis.getBuffer(j.gradKey),
    { run: j.run, step: j.step, shard: j.shard, count: j.end - j.start },
    theta4.length,
    j.gradKey,
  );
}

const prefixes: string[] = [];
beforeAll(async () => {
  train = limitSamples((await loadDataset('mnist', { dataDir: DATA })).train, 512);
});
beforeEach(async () => {
  prefix = `test-${randomUUID()}:`;
  prefixes.push(prefix);
  await redis.set(`${prefix}params:4`, Buffer.from(encodeParams(theta4)));
});
afterAll(async () => {
  for (const p of prefixes) {
    const keys = await redis.keys(`${p}*`);
    if (keys.length > 0) await redis.del(...keys);
  }
  await redis.quit();
});

describe('ShardProcessor', () => {
  it('writes the same gradient sum, loss and correct count as computing the shard directly, bit for bit', async () => {
    const result = await new ShardProcessor(redis, DATA, 'test-worker').process(job());
    const ref = reference(theta4, job());
    expect(paramsSha256(await gradientAt(job()))).toBe(paramsSha256(ref.grads));
    expect(result).toMatchObject({
      v: 1,
      run: 'r1',
      step: 4,
      shard: 1,
      attempt: 0,
      count: 32,
      lossSum: ref.lossSum,
      correct: ref.correct,
      worker: 'test-worker',
    });
    for (const ms of [result.fetchMs, result.computeMs, result.uploadMs]) expect(ms).toBeGreaterThanOrEqual(0);
  });

  it('writes the gradient with a TTL of at most KEY_TTL_MS', async () => {
    await new ShardProcessor(redis, DATA).process(job());
    const ttl = await redis.pttl(job().gradKey);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(KEY_TTL_MS);
  });

  it('writes identical bytes when a job is delivered twice, also with another job in between and on another worker', async () => {
    const processor = new ShardProcessor(redis, DATA);
    await processor.process(job());
    const first = await redis.getBuffer(job().gradKey);
    // A larger shard in between: the buffers grow and the gradient must be zeroed before the repeat.
    await processor.process(job({ shard: 0, start: 0, end: 40, gradKey: `${prefix}grad:4:0` }));
    await processor.process(job());
    expect((await redis.getBuffer(job().gradKey))?.equals(first as Buffer)).toBe(true);
    await new ShardProcessor(redis, DATA).process(job());
    expect((await redis.getBuffer(job().gradKey))?.equals(first as Buffer)).toBe(true);
  });

  it('keeps θ of the version it holds: a job for the same parameter key needs no fetch', async () => {
    const processor = new ShardProcessor(redis, DATA);
    await processor.process(job());
    await redis.del(`${prefix}params:4`);
    const next = job({ shard: 2, start: 72, end: 100, gradKey: `${prefix}grad:4:2` });
    await expect(processor.process(next)).resolves.toMatchObject({ count: 28 });
    expect(paramsSha256(await gradientAt(next))).toBe(paramsSha256(reference(theta4, next).grads));
  });

  it('fetches θ again when the parameter key changes', async () => {
    const processor = new ShardProcessor(redis, DATA);
    await processor.process(job());
    await redis.set(`${prefix}params:5`, Buffer.from(encodeParams(theta5)));
    const next = job({ step: 5, paramsKey: `${prefix}params:5`, gradKey: `${prefix}grad:5:1` });
    await processor.process(next);
    expect(paramsSha256(await gradientAt(next))).toBe(paramsSha256(reference(theta5, next).grads));
  });

  it('fails with an InvalidMessageError naming the key when θ is missing', async () => {
    const processor = new ShardProcessor(redis, DATA);
    const missing = job({ step: 5, paramsKey: `${prefix}params:5`, gradKey: `${prefix}grad:5:1` });
    const error = await processor.process(missing).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InvalidMessageError);
    expect((error as Error).message).toContain(`${prefix}params:5: missing`);
    expect(await redis.exists(missing.gradKey)).toBe(0);
  });

  it('fails with an InvalidMessageError when θ has the wrong length', async () => {
    await redis.set(`${prefix}params:4`, Buffer.from(encodeParams(theta4.subarray(1))));
    await expect(new ShardProcessor(redis, DATA).process(job())).rejects.toThrow(`${prefix}params:4: ${(theta4.length - 1) * 4} bytes`);
  });

  it('refuses a model whose input size does not match the dataset', async () => {
    await expect(new ShardProcessor(redis, DATA).process(job({ model: 'mlp:10-4-2' }))).rejects.toThrow(
      'model mlp:10-4-2 takes 10 inputs; mnist has 784',
    );
  });

  it('is never given a job whose samples lie outside the run (validateShardJob refuses it)', () => {
    expect(() => validateShardJob(job({ end: 600 }))).toThrow('range [40, 600) is not within 512 samples');
  });
});
