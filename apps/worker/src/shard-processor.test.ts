import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import {
  encodeParams, InvalidMessageError, KEY_TTL_MS, MessageSigner, readGradientInto, readResultMessage, RedisConnectionError, RedisReplyError,
  signShardJob, TensorConnection, validateShardJob, type ShardJob,
} from '@gradq/cluster'; // prettier-ignore
import { epochOrder, limitSamples, loadDataset, type Split } from '@gradq/data';
import { encodedGradientBytes, Model, paramsSha256 } from '@gradq/nn';
import { CompressionScratch, compressShardGradient, residualBytes, shardGradient, ShardInputs } from '@gradq/train';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { MODEL_CACHE, ShardProcessor, type TensorLink } from './shard-processor.js';

const DATA = fileURLToPath(new URL('../../../../shared/data', import.meta.url));
const SPEC = 'mlp:784-16-10';
const redis = new Redis('redis://127.0.0.1:6379'); // the test's own view of Redis
const tensors = new TensorConnection('redis://127.0.0.1:6379'); // the processors'
let prefix: string;
let train: Split;
const theta4 = new Model(SPEC, { seed: 3 }).params;
const theta5 = new Model(SPEC, { seed: 4 }).params;

function job(patch: Partial<ShardJob> = {}): ShardJob {
  return {
    v: 5, run: 'r1', step: 4, shard: 1, attempt: 0, dataset: 'mnist', trainSamples: 512, seed: 7, epoch: 1, start: 40, end: 72, cuts: [],
    model: SPEC, shift: 0, paramsKey: `${prefix}params:4`, resultsKey: `${prefix}results`, codec: 'none', residualIn: [], residualOut: [], ...patch,
  }; // prettier-ignore
}

/** The shard's gradient sum and stats as the in-process trainer computes them (libs/train's shardGradient). */
function reference(params: Float32Array, j: ShardJob) {
  const model = new Model(SPEC, { seed: 99 });
  model.params.set(params);
  const stats = shardGradient(model, train, epochOrder(j.seed, j.epoch, j.trainSamples), j.start, j.end, new ShardInputs());
  return { grads: model.grads, ...stats, count: j.end - j.start };
}

/**
 * Pops the oldest message off the job's results list (waiting up to 2 s: process() resolves before its push is
 * acknowledged, on a connection of its own): its header and its gradient.
 */
async function popResult(j: ShardJob, signer?: MessageSigner): Promise<{ header: Record<string, unknown>; grads: Float32Array }> {
  const popped = await redis.blpopBuffer(j.resultsKey, 2);
  if (popped === null) throw new Error(`nothing on ${j.resultsKey}`);
  const { header, gradient } = readResultMessage(popped[1], undefined, signer);
  const grads = new Float32Array(gradient.byteLength / 4);
  readGradientInto(gradient, grads, 'test');
  return { header, grads };
}

async function gradientAt(j: ShardJob): Promise<Float32Array> {
  return (await popResult(j)).grads;
}

/** A connection stand-in that fetches θ from Redis and pushes with `rpushExpire`. */
function pushingWith(rpushExpire: TensorLink['rpushExpire']): TensorLink {
  return { get: (key, into) => tensors.get(key, into), rpushExpire };
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
  await tensors.quit();
});

describe('ShardProcessor', () => {
  it('pushes the same gradient sum, loss and correct count as computing the shard directly, bit for bit', async () => {
    const [result, ...more] = await new ShardProcessor(tensors, DATA, 'test-worker').process(job());
    expect(more).toEqual([]);
    const ref = reference(theta4, job());
    const pushed = await popResult(job());
    expect(paramsSha256(pushed.grads)).toBe(paramsSha256(ref.grads));
    expect(pushed.header).toEqual(result);
    expect(result).toMatchObject({
      v: 4,
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

  it('int8: encodes each shard with its residual (read from the key the job names), writes the new one first, and sends one result a shard', async () => {
    // Shards 0 and 1 of [0, 72): a compressed job starting at shard 0 is not summed ahead.
    const n = theta4.length;
    const keys = { in: [`${prefix}residual:3:0`, ''], out: [`${prefix}residual:4:0`, `${prefix}residual:4:1`] };
    const stored = new Uint8Array(residualBytes(n));
    compressShardGradient(
      'int8',
      Float32Array.from({ length: n }, (_, i) => Math.cos(i)),
      null,
      new Uint8Array(encodedGradientBytes('int8', n)),
      stored,
      new CompressionScratch(),
    );
    await redis.set(keys.in[0], Buffer.from(stored));
    const int8 = job({ shard: 0, start: 0, end: 72, cuts: [40], codec: 'int8', residualIn: keys.in, residualOut: keys.out });
    const results = await new ShardProcessor(tensors, DATA, 'w8').process(int8);
    expect(results.map((r) => [r.shard, r.through, r.codec])).toEqual([[0, 0, 'int8'], [1, 1, 'int8']]); // prettier-ignore
    for (const [k, [start, end]] of [
      [0, 40],
      [40, 72],
    ].entries()) {
      const popped = await redis.blpopBuffer(int8.resultsKey, 2);
      const { header, gradient } = readResultMessage(popped?.[1] ?? Buffer.alloc(0));
      expect(header).toMatchObject({ shard: k, codec: 'int8' });
      // As libs/train's compressShardGradient gives it in-process, from the same residual.
      const ref = reference(theta4, job({ shard: k, start, end }));
      const out = new Uint8Array(encodedGradientBytes('int8', n));
      const next = new Uint8Array(residualBytes(n));
      compressShardGradient('int8', ref.grads, k === 0 ? stored : null, out, next, new CompressionScratch());
      expect(Buffer.from(gradient).equals(Buffer.from(out))).toBe(true);
      expect((await redis.getBuffer(keys.out[k]))?.equals(Buffer.from(next))).toBe(true);
      expect(await redis.pttl(keys.out[k])).toBeGreaterThan(KEY_TTL_MS - 60_000);
    }
  });

  it('int8: fails the shard, and pushes a failure report, when the residual it must read is missing', async () => {
    const int8 = job({ codec: 'int8', residualIn: [`${prefix}residual:3:1`], residualOut: [`${prefix}residual:4:1`] });
    await expect(new ShardProcessor(tensors, DATA, 'w8').process(int8)).rejects.toThrow(/residual:3:1: residual missing/);
    const popped = await redis.blpopBuffer(int8.resultsKey, 2);
    expect(readResultMessage(popped?.[1] ?? Buffer.alloc(0)).header).toMatchObject({
      shard: 1,
      error: expect.stringMatching(/residual missing/),
    });
    expect(await redis.exists(`${prefix}residual:4:1`)).toBe(0);
  });

  it('answers a job of several shards with one result per non-empty shard, in shard order, each as computed alone', async () => {
    // Shards 1, 2, 3 and an empty shard 4 of [40, 100): [40, 55), [55, 72), [72, 100), [100, 100).
    const several = job({ start: 40, end: 100, cuts: [55, 72, 100] });
    const results = await new ShardProcessor(tensors, DATA, 'w3').process(several);
    expect(results.map((r) => [r.shard, r.count])).toEqual([[1, 15], [2, 17], [3, 28]]); // prettier-ignore
    expect(results.slice(1).map((r) => r.fetchMs)).toEqual([0, 0]); // θ fetched once for the job
    for (const [i, [start, end]] of [
      [40, 55],
      [55, 72],
      [72, 100],
    ].entries()) {
      const alone = job({ shard: 1 + i, start, end });
      const pushed = await popResult(alone);
      const ref = reference(theta4, alone);
      expect(pushed.header).toEqual(results[i]);
      expect([pushed.header.lossSum, pushed.header.correct]).toEqual([ref.lossSum, ref.correct]);
      expect(paramsSha256(pushed.grads)).toBe(paramsSha256(ref.grads));
    }
    expect(await redis.llen(several.resultsKey)).toBe(0);
  });

  it('answers a job that starts at shard 0 with one message: the shards summed in shard order from zero, as the coordinator adds them', async () => {
    // Shards 0, 1 (empty), 2 of [0, 72): [0, 40), [40, 40), [40, 72).
    const prefix = job({ shard: 0, start: 0, end: 72, cuts: [40, 40] });
    const [result, ...more] = await new ShardProcessor(tensors, DATA, 'w0').process(prefix);
    expect(more).toEqual([]);
    const refs = [job({ shard: 0, start: 0, end: 40 }), job({ shard: 2, start: 40, end: 72 })].map((j) => reference(theta4, j));
    const sum = new Float32Array(refs[0].grads.length);
    for (const ref of refs) for (let i = 0; i < sum.length; i++) sum[i] = Math.fround(sum[i] + ref.grads[i]);
    expect(result).toMatchObject({
      shard: 0,
      through: 2,
      count: 72,
      lossSum: 0 + refs[0].lossSum + refs[1].lossSum,
      correct: refs[0].correct + refs[1].correct,
    });
    const pushed = await popResult(prefix);
    expect(pushed.header).toEqual(result);
    expect(paramsSha256(pushed.grads)).toBe(paramsSha256(sum));
    expect(await redis.llen(prefix.resultsKey)).toBe(0);
  });

  it('reports every shard of a job that fails: one failure report per non-empty shard', async () => {
    const several = job({ step: 5, paramsKey: `${prefix}params:5`, start: 40, end: 100, cuts: [40, 72] }); // θ missing; shard 1 empty
    const error = await new ShardProcessor(tensors, DATA, 'w9').process(several).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InvalidMessageError);
    for (const shard of [2, 3]) {
      const report = await popResult(several);
      expect(report.header).toEqual({ v: 2, run: 'r1', step: 5, shard, attempt: 0, worker: 'w9', error: (error as Error).message });
    }
    expect(await redis.llen(several.resultsKey)).toBe(0);
  });

  it('logs a push that fails (here: the results key is not a list) instead of failing the job; flush() waits for it', async () => {
    const lines: string[] = [];
    const processor = new ShardProcessor(tensors, DATA, 'w1', (line) => lines.push(line));
    const wrong = job({ resultsKey: `${prefix}not-a-list` });
    await redis.set(wrong.resultsKey, 'text');
    await expect(processor.process(wrong)).resolves.toMatchObject([{ shard: 1 }]);
    await processor.flush();
    expect(lines).toEqual([expect.stringMatching(/^w1: step 4 shard 1: pushing the result failed \(.*WRONGTYPE/)]);
    // The next job's push is not affected.
    await processor.process(job());
    await processor.flush();
    expect(await redis.llen(job().resultsKey)).toBe(1);
  });

  it('tries a push that failed for the connection again until it lands, logging the failure and the try that worked', async () => {
    // A connection stand-in that loses its connection twice, then pushes for real (each try sends the same message).
    const lines: string[] = [];
    const sent: Buffer[] = [];
    const flaky = pushingWith(async (key, message, ttlMs) => {
      sent.push(Buffer.from(message));
      if (sent.length <= 2)
        throw new RedisConnectionError('Redis at redis://127.0.0.1:6379: connection lost (no reply to RPUSH in 3000 ms)');
      await tensors.rpushExpire(key, message, ttlMs);
    });
    const processor = new ShardProcessor(flaky, DATA, 'w1', (line) => lines.push(line));
    const [result] = await processor.process(job());
    await processor.flush();
    expect(sent).toHaveLength(3);
    expect(sent[2].equals(sent[0])).toBe(true);
    expect(lines).toEqual([
      'w1: step 4 shard 1: pushing the result failed (Redis at redis://127.0.0.1:6379: connection lost (no reply to RPUSH in 3000 ms)); trying again for up to 20 s',
      'w1: step 4 shard 1: the result pushed at try 3',
    ]);
    // In the list once, as computed.
    expect(await redis.llen(job().resultsKey)).toBe(1);
    expect((await popResult(job())).header).toMatchObject({ shard: 1, count: result.count, lossSum: result.lossSum });
  });

  it('gives a push up after pushRetryMs of failed tries, and at once after stopRetrying(); a reply error is not tried again', async () => {
    const lines: string[] = [];
    let tries = 0;
    const down = pushingWith(async () => {
      tries++;
      throw new RedisConnectionError('Redis at redis://127.0.0.1:6379: connection lost (connect timed out after 5000 ms)');
    });
    const processor = new ShardProcessor(down, DATA, 'w2', (line) => lines.push(line), undefined, 600);
    await processor.process(job());
    await processor.flush(); // tries after 0, 250, 750 ms: the third is past 600 ms
    expect(tries).toBe(3);
    expect(lines).toEqual([
      expect.stringMatching(
        /^w2: step 4 shard 1: pushing the result failed \(.*connect timed out after 5000 ms\)\); trying again for up to 1 s$/,
      ),
      expect.stringMatching(/^w2: step 4 shard 1: pushing the result failed at try 3 too \(.*\); given up$/),
    ]);
    // Closing: no try after the first.
    tries = 0;
    lines.length = 0;
    processor.stopRetrying();
    await processor.process(job());
    await processor.flush();
    expect(tries).toBe(1);
    expect(lines).toEqual([
      expect.stringMatching(/^w2: step 4 shard 1: pushing the result failed \(.*connect timed out after 5000 ms\)\)$/),
    ]);
    // An error reply (the command is wrong here): one try, however long the retry time.
    let replies = 0;
    const wrong = pushingWith(async () => {
      replies++;
      throw new RedisReplyError('WRONGTYPE Operation against a key holding the wrong kind of value');
    });
    const patient = new ShardProcessor(wrong, DATA, 'w3', () => undefined, undefined, 60_000);
    await patient.process(job());
    await patient.flush();
    expect(replies).toBe(1);
  });

  it('waits for a push to be acknowledged before reusing its buffer for the next message; flush() waits for the last', async () => {
    // A connection stand-in whose RPUSH answers only when the test says so and keeps the Buffer it was given (as
    // a command still being written does).
    const sent: Buffer[] = [];
    const acknowledge: Array<() => void> = [];
    const fake = pushingWith((_key, message) => {
      sent.push(message as Buffer);
      return new Promise<void>((resolve) => acknowledge.push(resolve));
    });
    const processor = new ShardProcessor(fake, DATA, 'w1');
    await processor.process(job());
    const second = processor.process(job({ shard: 2, start: 72, end: 100 }));
    await new Promise((r) => setTimeout(r, 100));
    expect(sent).toHaveLength(1);
    expect(readResultMessage(sent[0]).header.shard).toBe(1); // not overwritten by the second message
    acknowledge[0]();
    await second;
    expect(sent).toHaveLength(2);
    expect(readResultMessage(sent[1]).header.shard).toBe(2);
    let flushed = false;
    void processor.flush().then(() => (flushed = true));
    await new Promise((r) => setTimeout(r, 20));
    expect(flushed).toBe(false);
    acknowledge[1]();
    await processor.flush();
    expect(flushed).toBe(true);
  });

  it('pushes onto a results list with a TTL of at most KEY_TTL_MS', async () => {
    const processor = new ShardProcessor(tensors, DATA);
    await processor.process(job());
    await processor.flush();
    const ttl = await redis.pttl(job().resultsKey);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(KEY_TTL_MS);
  });

  it('pushes the same result when a job is delivered twice, also with another job in between and on another worker', async () => {
    const processor = new ShardProcessor(tensors, DATA);
    const same = (r: { header: Record<string, unknown>; grads: Float32Array }) =>
      [r.header.lossSum, r.header.correct, r.header.shard, paramsSha256(r.grads)] as const;
    await processor.process(job());
    const first = same(await popResult(job()));
    // A larger shard in between: the buffers grow and the gradient must be zeroed before the repeat.
    await processor.process(job({ shard: 0, start: 0, end: 40 }));
    expect((await popResult(job())).header.shard).toBe(0);
    await processor.process(job());
    expect(same(await popResult(job()))).toEqual(first);
    await new ShardProcessor(tensors, DATA).process(job());
    expect(same(await popResult(job()))).toEqual(first);
  });

  it('keeps θ of the version it holds: a job for the same parameter key needs no fetch', async () => {
    const processor = new ShardProcessor(tensors, DATA);
    await processor.process(job());
    await redis.del(`${prefix}params:4`);
    await popResult(job());
    const next = job({ shard: 2, start: 72, end: 100 });
    await expect(processor.process(next)).resolves.toMatchObject([{ count: 28 }]);
    expect(paramsSha256(await gradientAt(next))).toBe(paramsSha256(reference(theta4, next).grads));
  });

  it('fetches θ again when the parameter key changes', async () => {
    const processor = new ShardProcessor(tensors, DATA);
    await processor.process(job());
    await redis.set(`${prefix}params:5`, Buffer.from(encodeParams(theta5)));
    await popResult(job());
    const next = job({ step: 5, paramsKey: `${prefix}params:5` });
    await processor.process(next);
    expect(paramsSha256(await gradientAt(next))).toBe(paramsSha256(reference(theta5, next).grads));
  });

  it('fails with an InvalidMessageError naming the key when θ is missing, and pushes a failure report', async () => {
    const processor = new ShardProcessor(tensors, DATA, 'w9');
    const missing = job({ step: 5, paramsKey: `${prefix}params:5` });
    const error = await processor.process(missing).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InvalidMessageError);
    expect((error as Error).message).toContain(`${prefix}params:5: missing`);
    const report = await popResult(missing);
    expect(report.header).toEqual({ v: 2, run: 'r1', step: 5, shard: 1, attempt: 0, worker: 'w9', error: (error as Error).message });
    expect(report.grads).toHaveLength(0);
    expect(await redis.llen(missing.resultsKey)).toBe(0);
  });

  it('fails with an InvalidMessageError when θ has the wrong length', async () => {
    await redis.set(`${prefix}params:4`, Buffer.from(encodeParams(theta4.subarray(1))));
    await expect(new ShardProcessor(tensors, DATA).process(job())).rejects.toThrow(`${prefix}params:4: ${(theta4.length - 1) * 4} bytes`);
  });

  it('refuses a model whose input size does not match the dataset', async () => {
    await expect(new ShardProcessor(tensors, DATA).process(job({ model: 'mlp:10-4-2' }))).rejects.toThrow(
      'model mlp:10-4-2 takes [10] but mnist has 784 inputs',
    );
  });

  it(`keeps only the ${MODEL_CACHE} most recently used models, whatever specs its jobs name`, async () => {
    const processor = new ShardProcessor(tensors, DATA);
    for (const model of ['mlp:784-8-10', 'mlp:784-9-10', SPEC, 'mlp:784-8-10', SPEC]) {
      await processor.process(job({ model })).catch(() => undefined); // θ of another length: the job fails, the model stays
    }
    expect(processor.cachedModels).toEqual(['mlp:784-8-10', SPEC]);
  });

  it('refuses a model above the parameter cap before allocating it', async () => {
    await expect(new ShardProcessor(tensors, DATA).process(job({ model: 'mlp:784-65536-10' }))).rejects.toThrow(/more than the 16777216/);
  });

  it('is never given a job whose samples lie outside the run (validateShardJob refuses it)', () => {
    expect(() => validateShardJob(job({ end: 600 }))).toThrow('range [40, 600) is not within 512 samples');
  });
});

describe('ShardProcessor with the run’s secret', () => {
  const signer = new MessageSigner(Buffer.from('the run’s shared secret, 32 bytes'));
  const stranger = new MessageSigner(Buffer.from('someone else’s secret, long enough'));
  const signedJob = (patch: Partial<ShardJob> = {}): ShardJob => signShardJob(job(patch), signer);
  /** θ_4 under its key, signed by `by` as the θ of `key`. */
  const storeTheta = async (by: MessageSigner, key = `${prefix}params:4`) =>
    void (await redis.set(`${prefix}params:4`, encodeParams(theta4, { key, signer: by })));

  it('takes a signed job and signed θ, and pushes a signed result: the gradient of computing the shard directly', async () => {
    await storeTheta(signer);
    const [result] = await new ShardProcessor(tensors, DATA, 'w-signed', undefined, signer).process(signedJob());
    const pushed = await popResult(job(), signer);
    expect(pushed.header).toEqual(result);
    expect(paramsSha256(pushed.grads)).toBe(paramsSha256(reference(theta4, job()).grads));
  });

  it.each([
    ['an unsigned job', () => job(), /shard job is not signed/],
    ['a job signed with another secret', () => signShardJob(job(), stranger), /shard job has a bad signature/],
    ['a signed job changed since', () => ({ ...signedJob(), start: 0 }), /shard job has a bad signature/],
  ])('refuses %s without computing, fetching or pushing anything', async (_what, make, pattern) => {
    await storeTheta(signer);
    const processor = new ShardProcessor(tensors, DATA, 'w-signed', undefined, signer);
    const error = await processor.process(make()).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InvalidMessageError);
    expect((error as Error).message).toMatch(pattern);
    await processor.flush();
    expect(await redis.llen(job().resultsKey)).toBe(0);
    expect(processor.cachedModels).toEqual([]);
  });

  it.each([
    ['unsigned θ', async () => void (await redis.set(`${prefix}params:4`, encodeParams(theta4))), /params:4: .*: not signed/],
    ['θ signed with another secret', () => storeTheta(stranger), /params:4: bad signature/],
    ['θ signed for another step', () => storeTheta(signer, `${prefix}params:3`), /params:4: bad signature/],
  ])('refuses %s and reports it, signed', async (_what, store, pattern) => {
    await store();
    const error = await new ShardProcessor(tensors, DATA, 'w-signed', undefined, signer).process(signedJob()).catch((e: unknown) => e);
    expect((error as Error).message).toMatch(pattern);
    const report = await popResult(job(), signer);
    expect(report.header).toMatchObject({ run: 'r1', step: 4, shard: 1, attempt: 0, worker: 'w-signed', error: (error as Error).message });
  });

  it('without a secret, fails a signed job and reports that, unsigned', async () => {
    const error = await new ShardProcessor(tensors, DATA, 'w-plain').process(signedJob()).catch((e: unknown) => e);
    expect((error as Error).message).toMatch(/shard job is signed, but this worker has no secret/);
    expect((await popResult(job())).header).toMatchObject({ worker: 'w-plain', error: (error as Error).message });
  });
});
