import type { BatchStats, Model } from '@gradq/nn';
import { gatherBatch, type Split } from '@gradq/data';

/** The input buffers of shardGradient, one set per caller: grown to the largest shard seen, then reused. */
export class ShardInputs {
  x = new Float32Array(0);
  y = new Uint8Array(0);

  reserve(count: number, features: number): void {
    if (this.y.length >= count && this.x.length >= count * features) return;
    this.x = new Float32Array(count * features);
    this.y = new Uint8Array(count);
  }
}

/**
 * THE recipe for one shard's gradient, which the in-process source and every worker call, so that a shard gives the
 * same bits wherever it is computed: gather positions [start, end) of the epoch `order` of `split` into `inputs`,
 * zero the model's gradients, then forward and backward. Leaves the shard's gradient **sum** (not mean) in
 * `model.grads` and returns its loss sum and correct count; an empty shard leaves zeros.
 */
export function shardGradient(model: Model, split: Split, order: Uint32Array, start: number, end: number, inputs: ShardInputs): BatchStats {
  const count = end - start;
  model.zeroGrads();
  if (count === 0) return { lossSum: 0, correct: 0 };
  inputs.reserve(count, split.features);
  gatherBatch(split, order, start, end, inputs.x, inputs.y);
  return model.forwardBackward(inputs.x, inputs.y, count);
}
