import { defineCommand, InputError, UsageError, type CommandIo, type ParsedFlags } from '@gradq/cli';
import {
  checkName,
  checkRedisUrl,
  REDIS_URL_ENV,
  RedisDeployment,
  resolveRedisUrl,
  SharedMemoryTensors,
  resolveSecret,
  validateLeaseJob,
  validateRoundJob,
  validateShardJob,
  LEASE_JOB_NAME,
  ROUND_JOB_NAME,
  WORKER_FLAGS,
  type ShardJob,
} from '@gradq/cluster';
import { Worker } from 'bullmq';
import { FailureStreak, type WorkerFailingError } from './failure-streak.js';
import { LeaseHolder, type LeaseResults } from './lease-holder.js';
import { ShardProcessor } from './shard-processor.js';

/**
 * Lock settings: a job's lock lasts LOCK_MS and is renewed every LOCK_MS/2 on the event loop, so one shard's
 * compute (milliseconds to ~0.2 s) stays far below the renewal period; a worker that dies loses its job to
 * another worker within about LOCK_MS + STALLED_CHECK_MS, not BullMQ's default 30 s.
 */
export const LOCK_MS = 4000;
export const STALLED_CHECK_MS = 2000;

export const workerCommand = defineCommand({
  summary: 'take shard jobs, step leases and local SGD round jobs from the queue and compute them (runs until SIGTERM/SIGINT)',
  usage: 'gradq worker [--redis URL] [--queue NAME] [--data-dir ROOT]',
  flags: WORKER_FLAGS,
  async run(flags, io) {
    await runWorker(flags, io);
  },
});

async function runWorker(flags: ParsedFlags<typeof WORKER_FLAGS>, io: CommandIo): Promise<void> {
  const { url } = resolveRedisUrl(flags.redis);
  checkRedisUrl(url);
  const { queue, quiet } = flags;
  checkName('queue', queue);
  // The name is also the BullMQ connection's (CLIENT SETNAME: printable ASCII, no spaces), by which the coordinator
  // tells connected workers apart.
  if (flags.name !== undefined && !/^[!-~]{1,100}$/.test(flags.name)) {
    throw new UsageError(`--name ${JSON.stringify(flags.name.slice(0, 100))}: use 1-100 printable ASCII characters without spaces`);
  }
  const secret = resolveSecret(flags['secret-file']);
  const log = (line: string): void => void io.stderr.write(`worker ${line}\n`);
  const deployment = await RedisDeployment.reach(url, log).catch((e: unknown) => {
    throw e instanceof InputError ? new UsageError(`${e.message}; check --redis (or $${REDIS_URL_ENV})`) : e;
  });
  const redis = deployment.connect(log);
  // θ fetches and result pushes get a lean connection of their own: a 400 KB push then travels while BullMQ
  // completes the job and hands out the next one on `redis`, instead of holding those commands up behind it.
  // θ that the coordinator put in shared memory on this machine is read from there, and results go back that way.
  const tensors = new SharedMemoryTensors(deployment.tensors());
  const processor = new ShardProcessor(tensors, flags['data-dir'], flags.name, log, secret?.signer);
  // Closing: a signal, the coordinator gone, or this worker failing job after job (see FailureStreak).
  const closing = new AbortController();
  const streak = new FailureStreak();
  let failing: WorkerFailingError | undefined;
  const leases = new LeaseHolder(processor, tensors, log, secret?.signer);
  const compute = async (name: string, data: unknown, id: string): Promise<LeaseResults> => {
    try {
      const result =
        name === ROUND_JOB_NAME
          ? await processor.processRound(validateRoundJob(data))
          : name === LEASE_JOB_NAME
            ? await leases.hold(validateLeaseJob(data), id, closing.signal)
            : await processor.process(validateShardJob(data));
      streak.succeeded();
      return result;
    } catch (e) {
      // The failure report is pushed already; pausing here (holding the job, which is superseded) keeps this
      // worker from taking the shard's next attempt before a healthy worker does.
      const next = streak.failed(e);
      if (next === 'stop') {
        failing ??= streak.stopError(processor.name);
        closing.abort();
      } else if (next > 0) await pause(next, closing.signal);
      throw e;
    }
  };
  const worker = new Worker<ShardJob, LeaseResults>(queue, async (job) => compute(job.name, job.data, job.id ?? ''), {
    connection: redis,
    prefix: deployment.queuePrefix(queue),
    concurrency: 1,
    lockDuration: LOCK_MS,
    stalledInterval: STALLED_CHECK_MS,
    maxStalledCount: 2,
    name: processor.name, // the coordinator tells connected workers by it (and their results by the same name)
  });
  // Connection errors (of BullMQ's second, blocking connection too) are the outage connectRedis reports once.
  worker.on('error', (e) => {
    if (!isConnectionError(e)) log(`${processor.name}: ${e.message}`);
  });
  worker.on('failed', (job, e) => log(`${processor.name}: job ${job?.id ?? '?'} failed: ${e.message}`));
  if (!quiet) {
    const signing = secret ? `; jobs, θ and results signed with the secret from ${secret.source}` : '';
    log(`${processor.name} taking jobs from queue "${queue}" at ${deployment.describe()}${signing}`);
  }

  // Finish (or hand back) the current job and close on SIGTERM/SIGINT, or when the launching coordinator goes.
  await new Promise<void>((resolve) => {
    const stop = (why: string): void => {
      if (!quiet) log(`${processor.name}: ${why}, closing`);
      resolve();
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
    if (process.send) process.once('disconnect', () => stop('coordinator gone'));
    closing.signal.addEventListener('abort', () => resolve());
  });
  closing.abort(); // ends a pause in progress
  processor.stopRetrying(); // a push failing from now on is not waited for
  process.removeAllListeners('disconnect'); // a listener keeps a local worker's IPC channel, and so the process, alive
  await worker.close();
  await processor.flush();
  await tensors.quit();
  await redis.quit().catch(() => redis.disconnect());
  if (failing) throw failing;
}

/** Resolves after `ms`, or at once when `signal` aborts. */
function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done);
  });
}

/** A socket's failure (ECONNREFUSED, ECONNRESET…) or ioredis' "Connection is closed.": Redis is out of reach. */
function isConnectionError(e: Error): boolean {
  return typeof (e as NodeJS.ErrnoException).syscall === 'string' || e.message === 'Connection is closed.';
}
