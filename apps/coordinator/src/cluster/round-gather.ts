import { readGradientInto, validateRoundResult, type ShardResult } from '@gradq/cluster';
import type { OptimizerState } from '@gradq/nn';
import type { ReplicaResult } from '@gradq/train';
import type { LeaseSet } from './lease-book.js';
import { StepGather, type GatherContext } from './step-gather.js';
import { replicaWork, type RoundJobSpec, type RoundPlan, type RoundPublisher } from './round-publisher.js';

/**
 * The gather of one local SGD round: StepGather's loop (first valid result per replica kept, duplicates, late and
 * bad messages ignored or rejected and recomputed, the watchdog, giving up), with round results instead of shard
 * gradients. Replica k's result carries Δ_k and its new inner state's buffers, read into payloads[k] after
 * checking their size and finiteness; nothing is added here: the trainer's LocalRounds adds the Δ_k in shard
 * order (sumDeltas) and adopts the states of the accepted results only.
 */
export class RoundGather extends StepGather {
  private readonly work: Array<{ count: number; steps: number; stateT: number }>;
  private readonly kept: Array<{ steps: number; stateT: number; lossSum: number; correct: number } | undefined>;

  constructor(
    private readonly round: RoundPlan,
    params: Float32Array,
    ctx: GatherContext,
    private readonly publisher: RoundPublisher,
    /** Where replica k's Δ and state buffers are read into ((1 + state buffers) × parameters each). */
    private readonly payloads: readonly Float32Array[],
  ) {
    // The round's first plan stands for the round: its shard count is K, and it names the round's first step.
    super(round.steps[0], params, new Float32Array(0), ctx);
    this.work = round.states.map((_, k) => replicaWork(round, k));
    this.kept = new Array(round.states.length);
  }

  /** Waits for the replicas of `jobs`, the round's first attempts (before they are published). */
  expectRound(jobs: readonly RoundJobSpec[]): void {
    for (const { data, opts } of jobs) {
      for (let k = data.shard; k < data.shard + data.replicas; k++) this.pending.set(k, { attempt: data.attempt, jobId: opts.jobId });
    }
  }

  /** Waits for every replica of the round's leases (a replica whose shards are all empty answers too). */
  override expectLeased(set: LeaseSet): void {
    for (const lease of set.leases) {
      for (let k = lease.shard; k < lease.shard + lease.count; k++) this.pending.set(k, { attempt: 0, jobId: lease.id });
    }
  }

  /**
   * The replicas' results in shard order, once collected: Δ_k and the state buffers are views of payloads[k] (the
   * caller gives every other round other payloads, so that the states adopted stay as they are while the next
   * round's results are read).
   */
  replicaResults(): ReplicaResult[] {
    return this.round.states.map((input, k) => {
      const r = this.kept[k];
      if (r === undefined) throw new Error(`round ${this.plan.globalStep}: replica ${k} has no result`);
      const n = input.buffers[0]?.length ?? this.payloads[k].length / (1 + input.buffers.length);
      const payload = this.payloads[k];
      const buffers = input.buffers.map((_, i) => payload.subarray((i + 1) * n, (i + 2) * n));
      const state: OptimizerState = { ...input, hyper: { ...input.hyper }, t: r.stateT, buffers };
      return { delta: payload.subarray(0, n), lossSum: r.lossSum, correct: r.correct, steps: r.steps, state };
    });
  }

  protected override validate(claim: Record<string, unknown>, k: number): ShardResult {
    const r = validateRoundResult(claim, { run: this.ctx.runId, step: this.plan.globalStep, shard: k, ...this.work[k] });
    // As a shard result, for the step's timings and the dashboard (a replica's round is its shard's work).
    const { run, step, shard, through, attempt, count, lossSum, correct, worker, fetchMs, computeMs, uploadMs } = r;
    return { v: 4, run, step, shard, through, attempt, codec: 'none', count, lossSum, correct, worker, fetchMs, computeMs, uploadMs };
  }

  protected override read(payload: Uint8Array, k: number, result: ShardResult): void {
    readGradientInto(payload, this.payloads[k], `round result from ${JSON.stringify(result.worker.slice(0, 100))}`);
    this.gradientBytes += payload.byteLength; // Δ_k and the replica's state: the round's bytes up
    const { steps, stateT } = this.work[k];
    this.kept[k] = { steps, stateT, lossSum: result.lossSum, correct: result.correct };
  }

  protected override addShard(): void {
    // Rounds add nothing here: LocalRounds sums the replicas' deltas (see the class comment).
  }

  protected override attemptAt(shard: number, attempt: number): { jobId: string; add: () => Promise<void> } {
    const job = this.publisher.job(this.round, shard, attempt);
    return { jobId: job.opts.jobId, add: () => this.publisher.add(this.round, job) };
  }

  protected override async keepParams(): Promise<void> {
    if (await this.publisher.restore(this.round, this.params)) {
      this.ctx.log(`round ${this.plan.globalStep}: θ was gone from Redis (restarted empty?); θ and the replicas' states written again`);
    }
  }
}
