import type { Model } from '@gradq/nn';
import { gatherBatch, type Split } from '@gradq/data';
import { addInto, type GradientSource, type StepPlan, type StepStats } from './gradient-source.js';

/** Computes every shard in this process with the trainer's own model (whose params are the trainer's). */
export class LocalGradientSource implements GradientSource {
  private x: Float32Array;
  private y: Uint8Array;

  constructor(
    private readonly model: Model,
    private readonly split: Split,
    maxShard: number,
  ) {
    this.x = new Float32Array(maxShard * split.features);
    this.y = new Uint8Array(maxShard);
  }

  async step(plan: StepPlan, params: Float32Array, sum: Float32Array): Promise<StepStats> {
    if (params !== this.model.params) throw new Error('LocalGradientSource computes with its model’s own parameters');
    let lossSum = 0;
    let correct = 0;
    for (const [start, end] of plan.shards) {
      if (end === start) continue;
      gatherBatch(this.split, plan.order, start, end, this.x, this.y);
      this.model.zeroGrads();
      const stats = this.model.forwardBackward(this.x, this.y, end - start);
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
