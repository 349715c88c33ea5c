import { addInto, type Model, type Optimizer, type OptimizerState } from '@gradq/nn';
import type { Split } from '@gradq/data';
import type { GradientSource, StepPlan, StepStats } from './gradient-source.js';
import { shardGradient, ShardInputs } from './shard-gradient.js';
import { replicaRound, type ReplicaResult } from './local-round.js';

/** Computes every shard in this process with the trainer's own model (whose params are the trainer's). */
export class LocalGradientSource implements GradientSource {
  private readonly inputs = new ShardInputs();

  constructor(
    private readonly model: Model,
    private readonly split: Split,
    /** The run's seed and largest image shift (0: no augmentation). */
    private readonly augment: { seed: number; shift: number },
    /** For local SGD rounds: a scratch model and inner optimizer (makeReplica) that every replica reuses in turn. */
    private readonly replica?: { model: Model; optimizer: Optimizer },
  ) {}

  async round(steps: readonly StepPlan[], theta: Float32Array, states: readonly OptimizerState[]): Promise<ReplicaResult[]> {
    if (!this.replica) throw new Error('LocalGradientSource was made without a replica model for local SGD rounds');
    const { model, optimizer } = this.replica;
    return states.map((state, k) => replicaRound(model, optimizer, this.split, steps, k, theta, state, this.inputs, this.augment));
  }

  async step(plan: StepPlan, params: Float32Array, sum: Float32Array): Promise<StepStats> {
    if (params !== this.model.params) throw new Error('LocalGradientSource computes with its model’s own parameters');
    let lossSum = 0;
    let correct = 0;
    const augmentation = { ...this.augment, epoch: plan.epoch };
    for (const [start, end] of plan.shards) {
      if (end === start) continue; // an empty shard of a last, partial batch adds nothing
      const stats = shardGradient(this.model, this.split, plan.order, start, end, this.inputs, augmentation);
      addInto(sum, this.model.grads);
      lossSum += stats.lossSum;
      correct += stats.correct;
    }
    return { lossSum, correct };
  }

  async close(): Promise<void> {
    // Nothing to release: the model and buffers belong to the trainer.
  }
}
