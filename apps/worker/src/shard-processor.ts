import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { addInto, encodedGradientBytes, firstNonFinite, Model, paramsDigest, type Optimizer } from '@gradq/nn';
import { InputError } from '@gradq/cli';
import { DATASET_NAMES, epochOrder, getDatasetInfo, limitSamples, loadSplit, stepsPerEpoch, type Split } from '@gradq/data';
import { RoundReplicas } from './round-replicas.js';
import {
  checkModelFits,
  CompressionScratch,
  compressShardGradient,
  keepsResidual,
  replicaRound,
  replicaSpecFor,
  residualBytes,
  roundEnd,
  roundSteps,
  shardGradient,
  ShardInputs,
} from '@gradq/train';
import {
  checkLeaseJobSignature,
  checkRoundJobSignature,
  checkShardJobSignature,
  readResidual,
  encodeResidual,
  InvalidMessageError,
  RedisConnectionError,
  jobShards,
  KEY_TTL_MS,
  ParamsFetcher,
  ResultWriter,
  type LeaseJob,
  type LeaseRelease,
  type MessageSigner,
  type RoundJob,
  type RoundResult,
  type ShardJob,
  type ShardResult,
  type TensorConnection,
} from '@gradq/cluster';

/** What the shards of one job share (see ShardProcessor.prepare). */
interface Prepared {
  train: Split;
  model: Model;
  /** Milliseconds spent fetching θ for the job: reported with its first shard, 0 with the others. */
  fetchMs: number;
}

/**
 * A stepping lease's model and optimizer (lease-job.ts): θ is the model's parameters, stepped by the optimizer after
 * each step's sum as the coordinator steps its own.
 */
export interface Stepper {
  model: Model;
  optimizer: Optimizer;
}

/** A model of its own to compute with (a stepping lease's), instead of one holding a θ fetched for the job. */
interface OwnModel {
  model: Model;
  /** Where the job's shards are summed (all of them, from zero: a stepping lease's job is shards 0..K-1). */
  sum: Float32Array;
  /** paramsDigest of the model's θ, for the result. */
  digest: string;
}

/** Models a processor keeps (see model()). */
export const MODEL_CACHE = 2;

/**
 * A result push that failed for the connection (RedisConnectionError: lost, timed out) is tried again for about this
 * long: the coordinator waits for it, where a lost one waits for its lease's lock to expire (a CI run whose log shows
 * such a lost push took 88 s to its next step after a 10 s outage, against 16 s in others);
 * one that lands late, or twice (the first had arrived after all), is ignored there.
 */
export const PUSH_RETRY_MS = 20_000;
/** Pauses between the tries of a push (the last one repeats). */
const PUSH_PAUSES_MS = [250, 500, 1000, 2000];

/** Residuals (--compress int8) a processor keeps of those it wrote, so as not to read them back (see residualIn). */
export const RESIDUAL_CACHE = 8;

/**
 * What a processor needs of its Redis connection: fetching θ and pushing result messages, and for --compress int8
 * reading and writing shard residuals (`set`).
 */
export type TensorLink = Pick<TensorConnection, 'get' | 'rpushExpire'> & Partial<Pick<TensorConnection, 'set'>>;

/** A residual to write (SET) just before the result it goes with is pushed. */
interface ResidualWrite {
  key: string;
  bytes: Uint8Array;
}

/**
 * A round lease's replicas' inner optimizer states, kept by its holder from one round to the next: replica k's
 * buffers (copied out of the result payload that carried them) and step counter, once the holder computed a round
 * of k.
 */
export class KeptStates {
  private readonly states = new Map<number, { all: Float32Array; buffers: Float32Array[]; t: number }>();

  /** Replica k's kept state (undefined: none yet). */
  get(k: number): { buffers: Float32Array[]; t: number } | undefined {
    return this.states.get(k);
  }

  /** Keeps `buffers` (the state's buffers of `n` values each, one after the other) as replica k's state at counter t. */
  keep(k: number, buffers: Float32Array, t: number, n: number): void {
    let entry = this.states.get(k);
    if (entry?.all.length !== buffers.length) {
      const all = new Float32Array(buffers.length);
      entry = { all, buffers: Array.from({ length: buffers.length / n }, (_, i) => all.subarray(i * n, (i + 1) * n)), t };
      this.states.set(k, entry);
    }
    entry.all.set(buffers);
    entry.t = t;
  }
}

/**
 * Computes shard gradients: loads each dataset once, keeps one model per spec, fetches θ only when the
 * parameter key changes, keeps the current epoch order, and pushes a result message per shard of the job (the
 * ShardResult and the shard's gradient sum, the next shard computed while it travels) onto the job's results
 * list; when a shard fails, it pushes a failure message instead, so the
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
  private prefix = new Float32Array(0); // the sum of a job's shards when it starts at shard 0
  private lastUploadMs = 0;
  private pushing: Promise<void> = Promise.resolve();
  private readonly writer: ResultWriter;
  private readonly params: ParamsFetcher;
  private readonly replicas = new RoundReplicas();
  private payload = new Float32Array(0); // a round result's Δ and state buffers, one after the other
  /** --compress: the encoded gradient of the shard being pushed, and the codec's working memory. */
  private encoded = new Uint8Array(0);
  private readonly compression = new CompressionScratch();
  /** Residuals this processor wrote, by key, most recent last (at most RESIDUAL_CACHE). */
  private readonly residuals = new Map<string, Uint8Array>();
  /** After stopRetrying(): a failed push is not tried again. */
  private retrying = true;

  constructor(
    private readonly tensors: TensorLink,
    private readonly dataDir: string | undefined,
    name?: string,
    private readonly log: (line: string) => void = () => undefined,
    private readonly signer?: MessageSigner,
    /** How long a push that failed for the connection is tried again (PUSH_RETRY_MS). */
    private readonly pushRetryMs = PUSH_RETRY_MS,
  ) {
    // host:pid is not unique with host networking, where every container's worker is PID 1 on the same host name.
    this.name = name ?? `${hostname()}:${process.pid}-${randomBytes(4).toString('hex')}`;
    this.params = new ParamsFetcher(tensors, signer);
    this.writer = new ResultWriter(signer);
  }

  /**
   * Computes the job's shards in order, pushing each one's result as soon as it is computed; resolves to the
   * results (one per non-empty shard). A job that starts at shard 0 is answered with one message instead (see
   * ShardResult): the shards' gradient sums added in shard order into a zeroed sum with addInto, which is what the
   * coordinator does with them, so the bits are the same and 1 message travels instead of several. When a shard
   * fails, a failure report is pushed for it and for each shard not answered after it, and the error is thrown.
   */
  async process(job: ShardJob): Promise<ShardResult[]> {
    // A job without this worker's signature on it gets no answer signed by it: else whoever can add jobs could have
    // genuine-looking failure reports signed for any shard. (Without a secret, a signed job is a failure to report.)
    if (this.signer) checkShardJobSignature(job, this.signer);
    return this.compute(job, () => (this.signer ? undefined : checkShardJobSignature(job, undefined)));
  }

  /**
   * One step of a lease this worker holds, as process() computes a job of those shards (`job`: leaseStepJob, whose
   * lease's signature was checked: checkLease).
   */
  processLeased(job: ShardJob): Promise<ShardResult[]> {
    return this.compute(job, () => undefined);
  }

  /**
   * The start of stepping lease `job`: the model and optimizer of its ReplicaSpec, with θ of its first step and the
   * optimizer state the coordinator wrote for it (both fetched, and checked as every θ is).
   */
  async startStepping(job: LeaseJob): Promise<Stepper> {
    const spec = replicaSpecFor(job);
    const replica = badJobIfInputError(() => this.replicas.get(spec));
    const { model, optimizer } = replica;
    if (job.stateBuffers !== optimizer.stateBuffers) {
      throw new InvalidMessageError(
        `lease job: ${job.stateBuffers} state buffers, a ${optimizer.name} optimizer keeps ${optimizer.stateBuffers}`,
      );
    }
    const n = model.params.length;
    await this.params.fetchInto(`${job.paramsPrefix}${job.step}`, model.params);
    if (replica.state.length !== job.stateBuffers * n) replica.state = new Float32Array(job.stateBuffers * n);
    if (job.stateBuffers > 0) await this.params.fetchInto(job.stateKey, replica.state);
    const buffers = Array.from({ length: job.stateBuffers }, (_, i) => replica.state.subarray(i * n, (i + 1) * n));
    optimizer.setState({ name: optimizer.name, hyper: optimizer.hyper, t: job.stateT, buffers });
    replica.paramsKey = ''; // the model's θ is the lease's now, not a round's
    return { model, optimizer };
  }

  /**
   * One step of a stepping lease (`job`: leaseStepJob of its shards 0..K-1) from the stepper's θ: the result a
   * one-step job of those shards gives, with θ's digest (the coordinator checks it against its own θ of the step);
   * then, when `update`, θ and the optimizer stepped by the sum as the coordinator steps them. No update when the sum
   * is not finite (the coordinator stops the run there): `updated` says whether θ moved on.
   */
  async processStepping(job: ShardJob, stepper: Stepper, update: boolean): Promise<{ results: ShardResult[]; updated: boolean }> {
    const { model, optimizer } = stepper;
    const sum = optimizer.gradientSum();
    const results = await this.compute(job, () => undefined, { model, sum, digest: paramsDigest(model.params) });
    if (!update || firstNonFinite(sum) >= 0) return { results, updated: false };
    optimizer.step(model.params, sum, job.end - job.start);
    return { results, updated: true };
  }

  /**
   * Checks a lease's signature (as process() checks a job's): a lease without it is refused unanswered when this
   * worker has a secret, and handed back (LeaseHolder.hold) otherwise.
   */
  checkLease(job: LeaseJob): void {
    checkLeaseJobSignature(job, this.signer);
  }

  /**
   * Starts fetching θ for `job` into its model, if this processor has that model already; resolves to whether θ
   * is there. Called with no await before it, the GET goes out at once, behind whatever command this connection
   * sent before it (a lease holder's wait for the next step: see LeaseHolder).
   */
  prefetch(job: Pick<ShardJob, 'model' | 'paramsKey'>): Promise<boolean> {
    const entry = this.models.get(job.model);
    if (!entry || entry.paramsKey === job.paramsKey) return Promise.resolve(entry !== undefined);
    entry.paramsKey = '';
    return this.params.fetchInto(job.paramsKey, entry.model.params).then(
      () => ((entry.paramsKey = job.paramsKey), true),
      () => false, // not there (yet): process fetches it again
    );
  }

  /** Pushes the message by which a lease holder hands lease `lease` back from step `step` on (LeaseRelease). */
  async release(job: Pick<LeaseJob, 'run' | 'resultsKey'>, lease: string, step: number): Promise<void> {
    await this.pushing;
    const header: LeaseRelease = { v: 1, kind: 'release', run: job.run, step, lease, worker: this.name };
    this.pushing = this.push({ step, resultsKey: job.resultsKey }, 'its lease release', this.writer.write(header), performance.now());
    await this.pushing;
  }

  /** A job's shards (see process), after `check` (which throws for a job to answer with failure reports). */
  private async compute(job: ShardJob, check: () => void, own?: OwnModel): Promise<ShardResult[]> {
    const shards = jobShards(job).filter((s) => s.end > s.start);
    const results: ShardResult[] = [];
    try {
      check();
      const prepared = await this.prepare(job, own?.model);
      if (own) return [await this.computePrefix(job, prepared, shards, own.sum, own.digest)];
      // A compressed shard is encoded with its own residual: shards are never summed ahead then.
      if (job.shard === 0 && shards.length > 1 && job.codec === 'none') return [await this.computePrefix(job, prepared, shards)];
      for (const shard of shards) {
        const i = shard.shard - job.shard; // its place in the job's residual keys
        const residualIn = keepsResidual(job.codec) ? this.residualIn(job.residualIn[i], prepared.model.params.length) : undefined;
        residualIn?.catch(() => undefined); // awaited below, after the compute it overlaps
        const { stats, computeMs } = this.computeShard(job, prepared, shard);
        let gradient: Float32Array | Uint8Array = prepared.model.grads;
        let residual: ResidualWrite | undefined;
        if (job.codec !== 'none') ({ gradient, residual } = this.compress(job, i, gradient, await residualIn));
        results.push(
          await this.pushResult(
            job,
            { shard: shard.shard, through: shard.shard, count: shard.end - shard.start, ...stats },
            computeMs,
            prepared.fetchMs,
            gradient,
            residual,
          ),
        );
        prepared.fetchMs = 0; // θ is fetched once a job
      }
      return results;
    } catch (e) {
      const error = String((e as Error).message).slice(0, 1000);
      for (const { shard } of shards.slice(results.length)) {
        const header = { v: 2 as const, run: job.run, step: job.step, shard, attempt: job.attempt, worker: this.name };
        await this.pushing;
        this.pushing = this.push(job, shard, this.writer.write({ ...header, error }), performance.now());
      }
      throw e;
    }
  }

  /**
   * A local SGD round job: replicas `job.shard`.. of the round one after the other, each run by libs/train's
   * replicaRound (the in-process recipe) from θ (fetched once) and the replica's state as the coordinator wrote them
   * for this round; pushes one result message a replica (RoundResult, then Δ_k and the new state's buffers) as soon
   * as it is computed. When a replica fails, a failure report is pushed for it and for each replica after it, and
   * the error is thrown.
   */
  async processRound(job: RoundJob): Promise<RoundResult[]> {
    if (this.signer) checkRoundJobSignature(job, this.signer);
    return this.computeRound(job, () => (this.signer ? undefined : checkRoundJobSignature(job, undefined)));
  }

  /**
   * One round of a round lease this worker holds (`job`: leaseRoundJob of its replicas, whose lease's signature was
   * checked), as processRound computes a round job of them, except that a replica's state comes from `kept` when
   * this holder computed the replica's round before (else from the job's state key); each replica's new state is
   * kept there for its next round.
   */
  processLeasedRound(job: RoundJob, kept: KeptStates): Promise<RoundResult[]> {
    return this.computeRound(job, () => undefined, kept);
  }

  /**
   * Starts fetching θ of round job `job` into its replica, if the replica is made already (see prefetch); resolves
   * to whether θ is there.
   */
  prefetchRound(job: RoundJob): Promise<boolean> {
    const replica = this.replicas.peek(replicaSpecFor(job));
    if (!replica || replica.paramsKey === job.paramsKey) return Promise.resolve(replica !== undefined);
    replica.paramsKey = '';
    return this.params.fetchInto(job.paramsKey, replica.theta).then(
      () => ((replica.paramsKey = job.paramsKey), true),
      () => false, // not there (yet): the round fetches it again
    );
  }

  /** A round job's replicas (see processRound), after `check` (which throws for a job to answer with failure reports). */
  private async computeRound(job: RoundJob, check: () => void, kept?: KeptStates): Promise<RoundResult[]> {
    const results: RoundResult[] = [];
    try {
      check();
      if (!(DATASET_NAMES as readonly string[]).includes(job.dataset)) {
        throw new InvalidMessageError(`round job: dataset ${JSON.stringify(job.dataset)} is not one of ${DATASET_NAMES.join(', ')}`);
      }
      const full = await this.trainSplit(job.dataset);
      const train = badJobIfInputError(() => limitSamples(full, job.trainSamples, { samples: `training samples of ${job.dataset}` }));
      const spec = replicaSpecFor(job);
      if (job.batch > job.trainSamples) throw new InvalidMessageError(`round job: a batch of ${job.batch} of ${job.trainSamples} samples`);
      const end = job.step + job.steps;
      if (roundEnd(job.step, job.steps, spec.stepsPerEpoch) !== end || end > spec.totalSteps) {
        throw new InvalidMessageError(
          `round job: steps [${job.step}, ${end}) are not within one epoch of ${spec.stepsPerEpoch} steps of the run`,
        );
      }
      const replica = badJobIfInputError(() => this.replicas.get(spec));
      const { model, optimizer } = replica;
      const classes = getDatasetInfo(job.dataset).classNames.length;
      badJobIfInputError(() => checkModelFits(model, { name: job.dataset, rows: train.rows, cols: train.cols, classes }));
      if (job.stateBuffers !== optimizer.stateBuffers) {
        throw new InvalidMessageError(
          `round job: ${job.stateBuffers} state buffers, a ${optimizer.name} optimizer keeps ${optimizer.stateBuffers}`,
        );
      }
      const n = model.params.length;
      const epoch = Math.floor(job.step / stepsPerEpoch(job.trainSamples, job.batch));
      const orderKey = `${job.dataset}/${job.seed}/${epoch}/${job.trainSamples}`;
      if (this.order.key !== orderKey) this.order = { key: orderKey, order: epochOrder(job.seed, epoch, job.trainSamples) };
      const steps = roundSteps(job.trainSamples, job.batch, job.shards, job.seed, job.step, end, this.order.order);
      if (replica.state.length !== job.stateBuffers * n) replica.state = new Float32Array(job.stateBuffers * n);
      const buffers = Array.from({ length: job.stateBuffers }, (_, i) => replica.state.subarray(i * n, (i + 1) * n));
      // Δ and the new state are written straight into the result's payload (Δ, then the state buffers).
      if (this.payload.length !== (1 + job.stateBuffers) * n) this.payload = new Float32Array((1 + job.stateBuffers) * n);
      const payload = this.payload;
      const into = { delta: payload.subarray(0, n), buffers: buffers.map((_, i) => payload.subarray((i + 1) * n, (i + 2) * n)) };
      for (let i = 0; i < job.replicas; i++) {
        const shard = job.shard + i;
        const t0 = performance.now();
        if (replica.paramsKey !== job.paramsKey) {
          replica.paramsKey = '';
          await this.params.fetchInto(job.paramsKey, replica.theta);
          replica.paramsKey = job.paramsKey;
        }
        const own = kept?.get(shard);
        if (own === undefined && job.stateBuffers > 0) {
          if (job.stateKeys[i] === '') throw new Error(`round ${job.step}: replica ${shard} has neither a kept state nor a state key`);
          await this.params.fetchInto(job.stateKeys[i], replica.state);
        }
        const fetchMs = performance.now() - t0;
        const t1 = performance.now();
        const from = own ? own.buffers : buffers;
        const state = { name: optimizer.name, hyper: optimizer.hyper, t: own ? own.t : job.stateTs[i], buffers: from };
        const r = replicaRound(model, optimizer, train, steps, shard, replica.theta, state, this.inputs, {
          seed: job.seed,
          shift: job.shift,
        }, into); // prettier-ignore
        const computeMs = performance.now() - t1;
        kept?.keep(shard, payload.subarray(n), r.state.t, n);
        const count = steps.reduce((c, p) => c + p.shards[shard][1] - p.shards[shard][0], 0);
        await this.pushing;
        const { run, step, attempt } = job;
        const result: RoundResult = {
          v: 1, kind: 'round', run, step, shard, through: shard, attempt, count, lossSum: r.lossSum, correct: r.correct,
          worker: this.name, fetchMs, computeMs, uploadMs: this.lastUploadMs, steps: r.steps, stateT: r.state.t,
        }; // prettier-ignore
        this.pushing = this.push(job, shard, this.writer.write(result, payload), performance.now());
        results.push(result);
      }
      return results;
    } catch (e) {
      const error = String((e as Error).message).slice(0, 1000);
      for (let shard = job.shard + results.length; shard < job.shard + job.replicas; shard++) {
        const header = { v: 2 as const, run: job.run, step: job.step, shard, attempt: job.attempt, worker: this.name };
        await this.pushing;
        this.pushing = this.push(job, shard, this.writer.write({ ...header, error }), performance.now());
      }
      throw e;
    }
  }

  /** Resolves when the last result message is in Redis (or its push has failed and been logged). */
  flush(): Promise<void> {
    return this.pushing;
  }

  /**
   * What a job's shards share: the training split, the model holding θ of the job's step, the epoch order.
   * What the job names (a dataset, a sample count, a model) that cannot be had is the job's fault, an
   * InvalidMessageError; what fails here (reading the dataset files, memory) is the worker's.
   */
  private async prepare(job: ShardJob, own?: Model): Promise<Prepared> {
    if (!(DATASET_NAMES as readonly string[]).includes(job.dataset)) {
      throw new InvalidMessageError(`shard job: dataset ${JSON.stringify(job.dataset)} is not one of ${DATASET_NAMES.join(', ')}`);
    }
    const full = await this.trainSplit(job.dataset);
    const train = badJobIfInputError(() => limitSamples(full, job.trainSamples, { samples: `training samples of ${job.dataset}` }));
    const entry = own ? undefined : badJobIfInputError(() => this.model(job.model));
    const model = own ?? (entry as { model: Model }).model;
    const classes = getDatasetInfo(job.dataset).classNames.length;
    badJobIfInputError(() => checkModelFits(model, { name: job.dataset, rows: train.rows, cols: train.cols, classes }));
    // Fetch θ unless this model already holds that version (or holds a θ of its own).
    const t0 = performance.now();
    if (entry && entry.paramsKey !== job.paramsKey) {
      entry.paramsKey = '';
      await this.params.fetchInto(job.paramsKey, model.params);
      entry.paramsKey = job.paramsKey;
    }
    const fetchMs = performance.now() - t0;
    const orderKey = `${job.dataset}/${job.seed}/${job.epoch}/${job.trainSamples}`;
    if (this.order.key !== orderKey) this.order = { key: orderKey, order: epochOrder(job.seed, job.epoch, job.trainSamples) };
    return { train, model, fetchMs };
  }

  /** One shard's gradient sum (into the model's gradient), by the recipe the in-process trainer uses. */
  private computeShard(job: ShardJob, { train, model }: Prepared, { start, end }: { start: number; end: number }) {
    const t1 = performance.now();
    const augmentation = { seed: job.seed, epoch: job.epoch, shift: job.shift };
    const stats = shardGradient(model, train, this.order.order, start, end, this.inputs, augmentation);
    return { stats, computeMs: performance.now() - t1 };
  }

  /**
   * --compress: the shard's gradient sum encoded with the job's codec (libs/train's compressShardGradient), and with
   * error feedback the new residual to write under the job's residualOut key for the shard.
   */
  private compress(
    job: ShardJob,
    i: number,
    grads: Float32Array,
    residualIn: Uint8Array | null | undefined,
  ): { gradient: Uint8Array; residual?: ResidualWrite } {
    const size = encodedGradientBytes(job.codec, grads.length);
    if (this.encoded.byteLength !== size) this.encoded = new Uint8Array(size);
    if (residualIn === undefined) {
      compressShardGradient(job.codec, grads, null, this.encoded, null, this.compression);
      return { gradient: this.encoded };
    }
    const next = new Uint8Array(residualBytes(grads.length));
    compressShardGradient(job.codec, grads, residualIn, this.encoded, next, this.compression);
    // Kept at once: whoever names this key later names the residual of a kept result for (step, shard, attempt),
    // which is these bytes whichever worker computed it.
    this.keepResidual({ key: job.residualOut[i], bytes: next });
    return { gradient: this.encoded, residual: { key: job.residualOut[i], bytes: next } };
  }

  /**
   * The residual stored under `key` ('' : none yet, null), from those this processor wrote or else from Redis
   * (checked: size, and the run's signature).
   */
  private async residualIn(key: string, n: number): Promise<Uint8Array | null> {
    if (key === '') return null;
    const kept = this.residuals.get(key);
    if (kept) return kept;
    return readResidual(this.tensors, key, residualBytes(n), this.signer);
  }

  /** Keeps a residual it wrote, dropping the oldest beyond RESIDUAL_CACHE. */
  private keepResidual({ key, bytes }: ResidualWrite): void {
    this.residuals.delete(key);
    this.residuals.set(key, bytes);
    if (this.residuals.size > RESIDUAL_CACHE) this.residuals.delete(this.residuals.keys().next().value as string);
  }

  /** Shards 0..k of a step as one result: their sums, losses, correct and sample counts added in shard order from 0. */
  private async computePrefix(
    job: ShardJob,
    prepared: Prepared,
    shards: ReadonlyArray<{ shard: number; start: number; end: number }>,
    into?: Float32Array,
    digest?: string,
  ): Promise<ShardResult> {
    const { grads } = prepared.model;
    if (!into && this.prefix.length !== grads.length) this.prefix = new Float32Array(grads.length);
    const sum = into ?? this.prefix; // copied into the message when it is written: free again once pushResult returns
    sum.fill(0);
    let lossSum = 0;
    let correct = 0;
    let computeMs = 0;
    for (const shard of shards) {
      const step = this.computeShard(job, prepared, shard);
      addInto(sum, grads);
      lossSum += step.stats.lossSum;
      correct += step.stats.correct;
      computeMs += step.computeMs;
    }
    const last = shards[shards.length - 1];
    return this.pushResult(
      job,
      {
        shard: 0,
        through: last.shard,
        count: last.end - shards[0].start,
        lossSum,
        correct,
        ...(digest !== undefined && { params: digest }),
      },
      computeMs,
      prepared.fetchMs,
      sum,
    );
  }

  /**
   * Pushes a result and its gradient, once the previous push has freed the writer's buffer. uploadMs is the
   * previous push's (this one has not happened yet).
   */
  private async pushResult(
    job: ShardJob,
    what: Pick<ShardResult, 'shard' | 'through' | 'count' | 'lossSum' | 'correct' | 'params'>,
    computeMs: number,
    fetchMs: number,
    gradient: Float32Array | Uint8Array,
    residual?: ResidualWrite,
  ): Promise<ShardResult> {
    await this.pushing;
    const { run, step, attempt, codec } = job;
    const result: ShardResult = {
      v: 4, run, step, ...what, attempt, codec, worker: this.name, fetchMs, computeMs, uploadMs: this.lastUploadMs,
    }; // prettier-ignore
    this.pushing = this.push(job, what.shard, this.writer.write(result, gradient), performance.now(), residual);
    return result;
  }

  /** From now on a push that fails is not tried again (the worker is closing: it does not wait out an outage). */
  stopRetrying(): void {
    this.retrying = false;
  }

  /**
   * RPUSH onto the job's results list, then renew its expiry (it expires with the run's other keys); tried again
   * for pushRetryMs when the connection fails (logged once, and once more when it lands or is given up); never
   * rejects.
   */
  private async push(
    job: Pick<ShardJob, 'step' | 'resultsKey'>,
    shard: number | string, // a string: what the message is
    message: Buffer,
    since: number,
    residual?: ResidualWrite,
  ): Promise<void> {
    const what = `${this.name}: step ${job.step} ${typeof shard === 'number' ? `shard ${shard}` : shard}`;
    for (let tries = 1; ; tries++) {
      try {
        await this.send(job, message, residual);
        this.lastUploadMs = performance.now() - since;
        if (tries > 1) this.log(`${what}: the result pushed at try ${tries}`);
        return;
      } catch (e) {
        const again = e instanceof RedisConnectionError && this.retrying && performance.now() - since < this.pushRetryMs;
        if (tries === 1) {
          const retry = again ? `; trying again for up to ${Math.round(this.pushRetryMs / 1000)} s` : '';
          this.log(`${what}: pushing the result failed (${(e as Error).message})${retry}`);
        } else if (!again) this.log(`${what}: pushing the result failed at try ${tries} too (${(e as Error).message}); given up`);
        if (!again) return;
        await new Promise((r) => setTimeout(r, PUSH_PAUSES_MS[Math.min(tries, PUSH_PAUSES_MS.length) - 1]));
      }
    }
  }

  /** One try of push(). */
  private async send(job: Pick<ShardJob, 'resultsKey'>, message: Buffer, residual?: ResidualWrite): Promise<void> {
    if (residual) {
      // The residual first, the result once Redis has acknowledged it: a result in the list implies its residual in
      // Redis. A SET that fails leaves no result behind it: the coordinator's watchdog recomputes the shard.
      if (!this.tensors.set) throw new Error('this processor’s Redis link cannot write residuals (--compress int8)');
      await this.tensors.set(residual.key, encodeResidual(residual.bytes, residual.key, this.signer), KEY_TTL_MS);
    }
    await this.tensors.rpushExpire(job.resultsKey, message, KEY_TTL_MS);
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
