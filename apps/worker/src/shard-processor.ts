import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { Model } from '@gradq/nn';
import { InputError } from '@gradq/cli';
import { DATASET_NAMES, epochOrder, getDatasetInfo, limitSamples, loadSplit, type Split } from '@gradq/data';
import { checkModelFits, shardGradient, ShardInputs } from '@gradq/train';
import {
  checkShardJobSignature,
  InvalidMessageError,
  KEY_TTL_MS,
  ParamsFetcher,
  ResultWriter,
  type MessageSigner,
  type ShardJob,
  type ShardResult,
  type TensorConnection,
} from '@gradq/cluster';

/** Models a processor keeps (see model()). */
export const MODEL_CACHE = 2;

/** What a processor needs of its Redis connection: fetching θ and pushing result messages. */
export type TensorLink = Pick<TensorConnection, 'get' | 'rpushExpire'>;

/**
 * Computes shard gradients: loads each dataset once, keeps one model per spec, fetches θ only when the
 * parameter key changes, keeps the current epoch order, and pushes a result message (the ShardResult and the
 * gradient sum) onto the job's results list; when a shard fails, it pushes a failure message instead, so the
 * coordinator can recompute it at once. Computing a job twice pushes the same result twice (the coordinator
 * keeps the first).
 *
 * A push overlaps what follows it: `tensors` is a connection of the processor's own, and process() resolves
 * once the message is handed to it, so BullMQ completes the job and hands out the next one on its connection
 * while the gradient is still travelling. The job may therefore be gone from the queue before its result is in
 * the list (the coordinator allows for that). The next message waits for the previous push to be acknowledged
 * before reusing its buffer; flush() waits for the last one. A push that fails is logged; the coordinator's
 * watchdog then recomputes that shard.
 *
 * With the run's secret (`signer`) it takes only jobs and θ that the coordinator signed, and signs what it pushes.
 */
export class ShardProcessor {
  readonly name: string;
  private readonly datasets = new Map<string, Promise<Split>>();
  private readonly models = new Map<string, { model: Model; paramsKey: string }>();
  private order: { key: string; order: Uint32Array } = { key: '', order: new Uint32Array(0) };
  private readonly inputs = new ShardInputs();
  private lastUploadMs = 0;
  private pushing: Promise<void> = Promise.resolve();
  private readonly writer: ResultWriter;
  private readonly params: ParamsFetcher;

  constructor(
    private readonly tensors: TensorLink,
    private readonly dataDir: string | undefined,
    name?: string,
    private readonly log: (line: string) => void = () => undefined,
    private readonly signer?: MessageSigner,
  ) {
    // host:pid is not unique with host networking, where every container's worker is PID 1 on the same host name.
    this.name = name ?? `${hostname()}:${process.pid}-${randomBytes(4).toString('hex')}`;
    this.params = new ParamsFetcher(tensors, signer);
    this.writer = new ResultWriter(signer);
  }

  async process(job: ShardJob): Promise<ShardResult> {
    // A job without this worker's signature on it gets no answer signed by it: else whoever can add jobs could have
    // genuine-looking failure reports signed for any shard. (Without a secret, a signed job is a failure to report.)
    if (this.signer) checkShardJobSignature(job, this.signer);
    try {
      if (!this.signer) checkShardJobSignature(job, undefined);
      return await this.compute(job);
    } catch (e) {
      const header = { v: 2 as const, run: job.run, step: job.step, shard: job.shard, attempt: job.attempt, worker: this.name };
      await this.pushing;
      this.pushing = this.push(
        job,
        this.writer.write({ ...header, error: String((e as Error).message).slice(0, 1000) }),
        performance.now(),
      );
      throw e;
    }
  }

  /** Resolves when the last result message is in Redis (or its push has failed and been logged). */
  flush(): Promise<void> {
    return this.pushing;
  }

  /**
   * What the job names (a dataset, a sample count, a model) that cannot be had is the job's fault, an
   * InvalidMessageError; what fails here (reading the dataset files, memory) is the worker's.
   */
  private async compute(job: ShardJob): Promise<ShardResult> {
    if (!(DATASET_NAMES as readonly string[]).includes(job.dataset)) {
      throw new InvalidMessageError(`shard job: dataset ${JSON.stringify(job.dataset)} is not one of ${DATASET_NAMES.join(', ')}`);
    }
    const full = await this.trainSplit(job.dataset);
    const train = badJobIfInputError(() => limitSamples(full, job.trainSamples, { samples: `training samples of ${job.dataset}` }));
    const entry = badJobIfInputError(() => this.model(job.model));
    const { model } = entry;
    const classes = getDatasetInfo(job.dataset).classNames.length;
    badJobIfInputError(() => checkModelFits(model, { name: job.dataset, rows: train.rows, cols: train.cols, classes }));
    // Fetch θ unless this model already holds that version.
    const t0 = performance.now();
    if (entry.paramsKey !== job.paramsKey) {
      entry.paramsKey = '';
      await this.params.fetchInto(job.paramsKey, model.params);
      entry.paramsKey = job.paramsKey;
    }
    const t1 = performance.now();
    // The shard's gradient sum, by the recipe the in-process trainer uses.
    const orderKey = `${job.dataset}/${job.seed}/${job.epoch}/${job.trainSamples}`;
    if (this.order.key !== orderKey) this.order = { key: orderKey, order: epochOrder(job.seed, job.epoch, job.trainSamples) };
    const count = job.end - job.start;
    const augmentation = { seed: job.seed, epoch: job.epoch, shift: job.shift };
    const stats = shardGradient(model, train, this.order.order, job.start, job.end, this.inputs, augmentation);
    const t2 = performance.now();
    // Push the result and the gradient sum, once the previous push has freed the writer's buffer. uploadMs is
    // the previous push's (this one has not happened yet).
    await this.pushing;
    const { run, step, shard, attempt } = job;
    const { lossSum, correct } = stats;
    const timings = { fetchMs: t1 - t0, computeMs: t2 - t1, uploadMs: this.lastUploadMs };
    const result: ShardResult = { v: 2, run, step, shard, attempt, count, lossSum, correct, worker: this.name, ...timings };
    this.pushing = this.push(job, this.writer.write(result, model.grads), performance.now());
    return result;
  }

  /**
   * RPUSH onto the job's results list, then renew its expiry (it expires with the run's other keys); never
   * rejects.
   */
  private async push(job: ShardJob, message: Buffer, since: number): Promise<void> {
    try {
      await this.tensors.rpushExpire(job.resultsKey, message, KEY_TTL_MS);
      this.lastUploadMs = performance.now() - since;
    } catch (e) {
      this.log(`${this.name}: step ${job.step} shard ${job.shard}: pushing the result failed (${(e as Error).message})`);
    }
  }

  private trainSplit(dataset: string): Promise<Split> {
    let loaded = this.datasets.get(dataset);
    if (!loaded) {
      loaded = loadSplit(dataset, 'train', { dataDir: this.dataDir }); // a worker never evaluates
      loaded.catch(() => this.datasets.delete(dataset));
      this.datasets.set(dataset, loaded);
    }
    return loaded;
  }

  /**
   * The model for a spec, from a cache of the MODEL_CACHE most recently used ones (a worker serves one run at a time;
   * a job naming another model must not make it keep every model it was ever asked for).
   */
  private model(spec: string): { model: Model; paramsKey: string } {
    let entry = this.models.get(spec);
    if (entry)
      this.models.delete(spec); // re-inserted below: the Map's order is the order of use
    else {
      entry = { model: new Model(spec), paramsKey: '' };
      if (this.models.size >= MODEL_CACHE) this.models.delete(this.models.keys().next().value as string);
    }
    this.models.set(spec, entry);
    return entry;
  }

  /** The specs of the cached models, least recently used first. */
  get cachedModels(): string[] {
    return [...this.models.keys()];
  }
}

/** `make()`, with bad input (a model spec, a sample count the job names) turned into the job's fault. */
function badJobIfInputError<T>(make: () => T): T {
  try {
    return make();
  } catch (e) {
    if (e instanceof InputError) throw new InvalidMessageError(`shard job: ${e.message}`);
    throw e;
  }
}
