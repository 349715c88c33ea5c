import { randomBytes } from 'node:crypto';
import { UsageError } from '@gradq/cli';
import {
  checkName,
  KEY_TTL_MS,
  redactRedisUrl,
  REDIS_URL_ENV,
  RedisDeployment,
  RedisRefusedError,
  RedisUnavailableError,
  resolveRedisUrl,
  SharedMemoryDir,
  SharedMemoryTensors,
  runKeys,
  type TensorStore,
  type SharedSecret,
  type ShardJob,
  type ShardResult,
} from '@gradq/cluster';
import type { ReplicaSpec, TrainConfig } from '@gradq/train';
import type { Optimizer } from '@gradq/nn';
import type { RoundDescriptor } from './round-publisher.js';
import { Queue } from 'bullmq';
import type { Cluster, Redis } from 'ioredis';
import { settlesWithin } from './bounded-wait.js';
import { ClusterGradientSource } from './cluster-gradient-source.js';
import { LocalWorkers } from './local-workers.js';
import { PrivateRedis, redisServerAvailable } from './private-redis.js';
import { StopSignals } from './stop-signals.js';
import { connectedWorkers, type ConnectedWorker } from './worker-roster.js';

/** How long each part of stop() may wait for Redis (which may be down) before it is dropped. */
const RELEASE_MS = 5000;

export interface ClusterRunOptions {
  /** The queue shared with the workers. */
  queue: string;
  /** The Redis URL given on the command line, if any (else $GRADQ_REDIS_URL, else the default). */
  redis: string | undefined;
  config: TrainConfig;
  paramCount: number;
  trainSamples: number;
  /** Local worker processes to start; 0 = rely on external workers. */
  workers: number;
  /** θ and results through shared memory for workers on this machine (SharedMemoryTensors), where there is one. */
  sharedMemory: boolean;
  /** The run's shared secret, if any: jobs, θ and results are then signed. */
  secret?: SharedSecret;
  /** A step gives up after this long without a valid result while no worker is responsive. */
  giveUpMs: number;
  /** For a local SGD run (--sync local:H): what its round jobs share. */
  rounds?: RoundDescriptor;
  /** Steps a set of step leases holds at most (--lease-steps: 0 auto, 1 a job per step). */
  leaseSteps: number;
  /**
   * The run's optimizer (the trainer's own, applied after each step) and its ReplicaSpec: a lease of every shard
   * (one worker) is a stepping lease, whose holder applies the same updates (lease-job.ts).
   */
  optimizer: { instance: Optimizer; replica: ReplicaSpec };
  log: (line: string) => void;
}

/**
 * Everything a distributed run holds besides the model: the Redis connections (a private redis-server when
 * none answers at the default address), the queue, the local workers, the gradient source, and the handlers of
 * SIGINT and SIGTERM, which stop the run cleanly: the source throws InterruptedError (the trainer checkpoints),
 * then stop() removes the run's jobs and keys and stops the local workers.
 */
export class ClusterRun {
  private liveWorkers = 0;
  /** The named worker connections as of the last poll (every 2 s). */
  connected: readonly ConnectedWorker[] = [];
  private workerPeakRss: number[] = [];
  private readonly timer: NodeJS.Timeout;

  private constructor(
    readonly url: string,
    readonly source: ClusterGradientSource,
    private readonly connections: Array<Redis | Cluster | TensorStore>,
    /** The run's queue (read by the dashboard's Bull Board). */
    readonly queue: Queue<ShardJob, ShardResult[]>,
    private readonly localWorkers: LocalWorkers,
    private readonly privateRedis: PrivateRedis | undefined,
    private readonly shm: SharedMemoryDir | undefined,
    private readonly workerCount: number,
    private readonly signals: StopSignals,
    private readonly log: (line: string) => void,
  ) {
    const poll = (): void => {
      connectedWorkers(this.queue).then(
        ({ count, named }) => {
          this.liveWorkers = count;
          this.connected = named;
        },
        () => undefined,
      );
    };
    poll();
    this.timer = setInterval(poll, 2000);
    this.timer.unref();
  }

  static async start(o: ClusterRunOptions): Promise<ClusterRun> {
    const queueName = o.queue;
    checkName('queue', queueName);
    const { deployment, privateRedis } = await reachRedis(o.redis, o.log);
    const url = deployment.url;
    const redis = deployment.connect(o.log);
    // θ is written and the results are popped (with BLPOP, which blocks its connection) on a lean connection of
    // their own; with shared memory, large ones travel as files and the connection carries pointers to them.
    const shm = o.sharedMemory ? SharedMemoryDir.create() : undefined;
    const tensors = shm ? new SharedMemoryTensors(deployment.tensors(), shm) : deployment.tensors();
    const queue = new Queue<ShardJob, ShardResult[]>(queueName, { connection: redis, prefix: deployment.queuePrefix(queueName) });
    // The URL and the secret through the environment: neither in a process list.
    const env = { ...process.env, [REDIS_URL_ENV]: url };
    // Without a listener BullMQ prints every connection error with its stack; connectRedis logs an outage once.
    queue.on('error', () => undefined);
    const workers = new LocalWorkers(
      ['--queue', queueName, ...(o.config.dataDir === undefined ? [] : ['--data-dir', o.config.dataDir])],
      o.secret ? o.secret.childEnvironment(env) : env,
      o.log,
    );
    // From the first signal on, local workers that exit (they may have had the SIGINT of a terminal too) are expected.
    const signals = new StopSignals(() => workers.expectExit(), o.log);
    try {
      const keys = runKeys(queueName, `r${Date.now().toString(36)}${randomBytes(3).toString('hex')}`);
      const { dataset, seed, model, augmentShift: shift } = o.config;
      const run = { dataset, trainSamples: o.trainSamples, seed, model, shift, codec: o.config.compress ?? 'none' };
      const stop = { giveUpMs: o.giveUpMs, signal: signals.signal };
      const leases =
        o.leaseSteps === 1
          ? undefined
          : {
              batch: o.config.batch,
              maxSteps: o.leaseSteps,
              epochs: o.config.epochs,
              optimizer: o.optimizer.instance,
              replica: o.optimizer.replica,
            };
      const source = new ClusterGradientSource(
        redis,
        tensors,
        queue,
        keys,
        run,
        o.paramCount,
        o.log,
        stop,
        o.secret?.signer,
        o.rounds,
        leases,
      );
      if (shm) o.log(`θ and the results of workers on this machine travel through ${shm.path}; Redis carries pointers to them`);
      workers.start(o.workers);
      o.log(
        `run ${keys.runId} on queue "${queueName}" at ${deployment.describe()}: ` +
          (o.workers > 0 ? `${o.workers} local workers` : 'waiting for external workers (gradq worker)'),
      );
      if (o.secret) o.log(`jobs, θ and results are signed with the secret from ${o.secret.source}; unsigned results are rejected`);
      return new ClusterRun(url, source, [redis, tensors], queue, workers, privateRedis, shm, o.workers, signals, o.log);
    } catch (e) {
      signals.uninstall();
      await releaseAll([
        () => workers.stop(),
        () => queue.close(),
        ...[redis, tensors].map((c) => () => quit(c)),
        () => privateRedis?.stop(),
        async () => shm?.remove(),
      ]);
      throw e;
    }
  }

  /** For the progress bar. */
  readonly progressText = (): string => `${this.liveWorkers} workers`;

  /** Extra fields of the --json summary. */
  report(): Record<string, unknown> {
    const t = this.source.timings;
    const per = (v: number): number => v / Math.max(1, t.steps);
    return {
      cluster_step_ms: {
        publish: per(t.publish),
        gather: per(t.gather),
        queue_wait: per(t.queueWait),
        worker_fetch: per(t.workerFetch),
        worker_compute: per(t.workerCompute),
        worker_upload: per(t.workerUpload),
        aggregate: per(t.aggregate),
      },
      worker_rss_peak_mb: this.workerPeakRss,
      workers: this.workerCount,
      redis: redactRedisUrl(this.url),
      pids: this.localWorkers.pids,
      duplicates_ignored: this.source.counters.duplicates,
      late_results_ignored: this.source.counters.late,
      results_rejected: this.source.counters.rejected,
      shards_recomputed: this.source.counters.recomputed,
      jobs_failed: this.source.counters.failed,
      /** Measured: mean gradient payload bytes of the results a step kept (bytes_per_step.gradients_up computes it). */
      gradients_up_measured: this.source.gradientBytesPerStep,
    };
  }

  /**
   * Stops the local workers first (each finishes or hands back its job and flushes its last push), then removes
   * the run's keys and closes the queue, the connections and a private redis-server. Every step runs even when
   * one fails, and none waits for Redis longer than RELEASE_MS (it may be down: the keys expire anyway); the
   * first failure is thrown at the end.
   */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.signals.uninstall();
    this.workerPeakRss = this.localWorkers.peakRssMb();
    await releaseAll([
      () => this.localWorkers.stop(),
      () => this.removeKeys(),
      () => settlesWithin(this.queue.close(), RELEASE_MS),
      ...this.connections.map((c) => () => quit(c)),
      () => this.privateRedis?.stop(),
      async () => this.shm?.remove(),
    ]);
  }

  private async removeKeys(): Promise<void> {
    const removed = await settlesWithin(this.source.close(), RELEASE_MS).catch((e: unknown) => e as Error);
    if (removed !== true) {
      const why = removed === false ? `no answer in ${RELEASE_MS / 1000} s` : removed.message;
      this.log(`the run's keys could not be removed from Redis (${why}); they expire within ${KEY_TTL_MS / 60_000} minutes`);
    }
  }
}

/** Runs every release in order, whatever fails; then throws the first failure, if any. */
async function releaseAll(steps: Array<() => Promise<unknown> | undefined>): Promise<void> {
  const failures: unknown[] = [];
  for (const step of steps) {
    try {
      await step();
    } catch (e) {
      failures.push(e);
    }
  }
  if (failures.length > 0) throw failures[0];
}

/** QUIT, or a plain disconnect when that fails or takes longer than RELEASE_MS. */
async function quit(connection: Redis | Cluster | TensorStore): Promise<void> {
  const done = await settlesWithin(connection.quit(), RELEASE_MS).catch(() => false);
  if (!done) connection.disconnect();
}

/**
 * --redis URL (or $GRADQ_REDIS_URL) must answer, after retries with backoff. Without either, the default
 * address is tried once; if nothing answers there, a private redis-server is started when one is on PATH.
 */
async function reachRedis(
  given: string | undefined,
  log: (line: string) => void,
): Promise<{ deployment: RedisDeployment; privateRedis?: PrivateRedis }> {
  const { url, chosen } = resolveRedisUrl(given);
  try {
    return { deployment: await RedisDeployment.reach(url, log, chosen ? 5 : 1) };
  } catch (e) {
    if (e instanceof RedisRefusedError) throw new UsageError(`${e.message}; check --redis (or $${REDIS_URL_ENV})`);
    if (!(e instanceof RedisUnavailableError)) throw e;
    if (chosen) throw new UsageError(`${e.message}; check --redis, or train with --local`);
    if (!redisServerAvailable()) {
      throw new UsageError(
        `no Redis answers at ${url} and redis-server is not on PATH: install Redis (e.g. apt-get install redis-server), pass --redis URL, or train with --local`,
      );
    }
    const privateRedis = await PrivateRedis.start(log);
    return { deployment: RedisDeployment.of(privateRedis.url, 'standalone'), privateRedis };
  }
}
