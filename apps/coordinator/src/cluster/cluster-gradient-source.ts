import {
  deleteKeysWithPrefix,
  type MessageSigner,
  type RunKeys,
  type ShardJob,
  type ShardResult,
  type TensorConnection,
} from '@gradq/cluster';
import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { GradientSource, StepPlan, StepStats } from '@gradq/train';
import { ClusterTimer, type ClusterTimings } from './cluster-timings.js';
import { ResultInbox } from './result-inbox.js';
import { StepGather, type ClusterCounters, type GatherContext } from './step-gather.js';
import { StepPublisher, type RunDescriptor } from './step-publisher.js';
import { TensorRetry } from './tensor-retry.js';

/**
 * The gradient source of the cluster. Per step: write θ_t and add the step's shard jobs (StepPublisher), then
 * gather the results as workers push them, adding the shards' gradients into the sum in shard order (StepGather).
 * θ and the results travel on `tensors` (a lean connection: see TensorConnection), whose lost connections are
 * retried (TensorRetry); the jobs travel on BullMQ's.
 */
export class ClusterGradientSource implements GradientSource {
  readonly counters: ClusterCounters = { duplicates: 0, rejected: 0, recomputed: 0, failed: 0 };
  private readonly timer = new ClusterTimer();
  private readonly publisher: StepPublisher;
  private readonly context: GatherContext;

  /**
   * `tensors` is a connection of its own: it writes θ, then waits in BLPOP for the results. With the run's secret
   * (`signer`), jobs and θ are signed and only signed results are read.
   */
  constructor(
    private readonly redis: Redis,
    tensors: TensorConnection,
    queue: Queue<ShardJob, ShardResult>,
    private readonly keys: RunKeys,
    run: RunDescriptor,
    private readonly paramCount: number,
    log: (line: string) => void,
    signer?: MessageSigner,
  ) {
    const retry = new TensorRetry(log);
    this.publisher = new StepPublisher(tensors, queue, keys, run, retry, signer);
    const inbox = new ResultInbox(tensors, keys.results, paramCount, retry);
    const { counters } = this;
    this.context = { runId: keys.runId, queue, publisher: this.publisher, inbox, grads: [], counters, log, signer };
  }

  /** Where a step's time went, summed over the steps after the first. */
  get timings(): ClusterTimings {
    return this.timer.totals;
  }

  async step(plan: StepPlan, params: Float32Array, sum: Float32Array): Promise<StepStats> {
    const t0 = performance.now();
    const grads = this.context.grads;
    while (grads.length < plan.shards.length) grads.push(new Float32Array(this.paramCount));
    const jobs = this.publisher.firstJobs(plan);
    const gather = new StepGather(plan, jobs, sum, this.context);
    await this.publisher.publish(plan.globalStep, params, jobs);
    const t1 = performance.now();
    await gather.collect();
    const t2 = performance.now();
    await gather.finish();
    const stats = gather.stats();
    this.timer.addStep(gather.shardResults, {
      publish: t1 - t0,
      gather: t2 - t1,
      aggregate: gather.aggregateMs + (performance.now() - t2),
    });
    return stats;
  }

  /** Removes every key of the run (θ, the results list); the queue's jobs were removed as they completed. */
  async close(): Promise<void> {
    await deleteKeysWithPrefix(this.redis, this.keys.prefix);
  }
}
