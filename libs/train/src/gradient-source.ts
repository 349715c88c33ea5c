import type { StepPlan as BatchPlan } from '@gradq/data';
import type { OptimizerState } from '@gradq/nn';
import type { ReplicaResult } from './local-round.js';
import type { ShardResiduals } from './shard-compression.js';

/**
 * Where a step's gradient comes from. The trainer zeroes `sum`, the source adds the K shard gradient sums of
 * the step into it **in shard order** (shard 0 first), and the trainer divides by the batch size in the
 * optimizer. The in-process source and the cluster source compute each shard with shardGradient and add the
 * shards in the same order with libs/nn's addInto (float32, element by element), so they give bit-identical
 * parameters. Which samples a step and shard use is libs/data's contract (planStep).
 */
export interface StepPlan extends BatchPlan {
  globalStep: number; // 0-based over the run
  /** This epoch's sample order; the plan's shard ranges are positions in it. */
  order: Uint32Array;
}

export interface StepStats {
  lossSum: number;
  correct: number;
}

export interface GradientSource {
  /** Adds the step's shard gradient sums into `sum` in shard order; returns the summed loss and correct count. */
  step(plan: StepPlan, params: Float32Array, sum: Float32Array): Promise<StepStats>;
  /**
   * Local SGD (--sync local:H): runs replicas 0..K-1 of a round (consecutive `steps` of one epoch) from `theta`,
   * replica k from inner optimizer state `states[k]` (kept by the trainer between rounds), each with libs/train's
   * replicaRound; returns their results in shard order. Undefined for a source that runs only synchronous steps.
   */
  round?(steps: readonly StepPlan[], theta: Float32Array, states: readonly OptimizerState[]): Promise<ReplicaResult[]>;
  /**
   * --compress with error feedback: each shard's stored residual as of the last step applied (to checkpoint it),
   * and putting it back (on --resume). Undefined for a source without compression.
   */
  residualState?(): Promise<ShardResiduals>;
  restoreResiduals?(residuals: ShardResiduals, nextStep: number): Promise<void>;
  close(): Promise<void>;
}
