import { hostname } from 'node:os';
import { Model } from '@gradq/nn';
import { epochOrder, gatherBatch, limitSamples, loadDataset, type Split } from '@gradq/data';
import {
  decodeParamsInto, encodeGradient, KEY_TTL_MS, type ShardJob, type ShardResult,
} from '@gradq/cluster'; // prettier-ignore
import type { Redis } from 'ioredis';

/**
 * Computes shard gradients: loads each dataset once, keeps one model per spec, fetches θ only when the
 * parameter key changes, keeps the current epoch order, and writes the gradient sum under the job's key.
 * Results are idempotent per (step, shard): computing a job twice writes the same bytes to the same key.
 */
export class ShardProcessor {
  readonly name: string;
  private readonly datasets = new Map<string, Promise<Split>>();
  private readonly models = new Map<string, { model: Model; paramsKey: string }>();
  private order: { key: string; order: Uint32Array } = { key: '', order: new Uint32Array(0) };
  private x = new Float32Array(0);
  private y = new Uint8Array(0);

  constructor(
    private readonly redis: Redis,
    private readonly dataDir: string | undefined,
    name?: string,
  ) {
    this.name = name ?? `${hostname()}:${process.pid}`;
  }

  async process(job: ShardJob): Promise<ShardResult> {
    const train = await this.trainSplit(job.dataset, job.trainSamples);
    const entry = this.model(job.model);
    const { model } = entry;
    if (model.inputSize !== train.features) {
      throw new Error(`model ${job.model} takes ${model.inputSize} inputs; ${job.dataset} has ${train.features}`);
    }
    // Fetch θ unless this model already holds that version.
    const t0 = performance.now();
    if (entry.paramsKey !== job.paramsKey) {
      entry.paramsKey = '';
      decodeParamsInto(await this.redis.getBuffer(job.paramsKey), model.params, job.paramsKey);
      entry.paramsKey = job.paramsKey;
    }
    const t1 = performance.now();
    // Forward and backward over the shard's samples.
    const orderKey = `${job.dataset}/${job.seed}/${job.epoch}/${job.trainSamples}`;
    if (this.order.key !== orderKey) this.order = { key: orderKey, order: epochOrder(job.seed, job.epoch, job.trainSamples) };
    const count = job.end - job.start;
    if (this.y.length < count) {
      this.x = new Float32Array(count * train.features);
      this.y = new Uint8Array(count);
    }
    gatherBatch(train, this.order.order, job.start, job.end, this.x, this.y);
    model.zeroGrads();
    const stats = model.forwardBackward(this.x, this.y, count);
    const t2 = performance.now();
    // Write the gradient sum.
    const header = { run: job.run, step: job.step, shard: job.shard, attempt: job.attempt, count };
    await this.redis.set(job.gradKey, Buffer.from(encodeGradient(header, model.grads)), 'PX', KEY_TTL_MS);
    const t3 = performance.now();
    return {
      v: 1, ...header, lossSum: stats.lossSum, correct: stats.correct, worker: this.name,
      fetchMs: t1 - t0, computeMs: t2 - t1, uploadMs: t3 - t2,
    }; // prettier-ignore
  }

  private trainSplit(dataset: string, samples: number): Promise<Split> {
    let loaded = this.datasets.get(dataset);
    if (!loaded) {
      loaded = loadDataset(dataset, { dataDir: this.dataDir }).then((d) => d.train);
      loaded.catch(() => this.datasets.delete(dataset));
      this.datasets.set(dataset, loaded);
    }
    return loaded.then((train) => limitSamples(train, samples, { flag: 'trainSamples', samples: `training samples of ${dataset}` }));
  }

  private model(spec: string): { model: Model; paramsKey: string } {
    let entry = this.models.get(spec);
    if (!entry) {
      entry = { model: new Model(spec), paramsKey: '' };
      this.models.set(spec, entry);
    }
    return entry;
  }
}
