import type { BatchStats, Model } from '@gradq/nn';
import { gatherBatch, shiftImages, type Split } from '@gradq/data';

/** The input buffers of shardGradient, one set per caller: grown to the largest shard seen, then reused. */
export class ShardInputs {
  x = new Float32Array(0);
  y = new Uint8Array(0);
  /** One image, for shifting. */
  scratch = new Float32Array(0);

  reserve(count: number, features: number): void {
    if (this.scratch.length < features) this.scratch = new Float32Array(features);
    if (this.y.length >= count && this.x.length >= count * features) return;
    this.x = new Float32Array(count * features);
    this.y = new Uint8Array(count);
  }
}

/** Data augmentation of a run: each training image moves by up to `shift` pixels (libs/data's sampleShift). */
export interface Augmentation {
  seed: number;
  epoch: number;
  /** Largest shift in pixels, each way; 0 = none. */
  shift: number;
}

/**
 * THE recipe for one shard's gradient, which the in-process source and every worker call, so that a shard gives the
 * same bits wherever it is computed: gather positions [start, end) of the epoch `order` of `split` into `inputs`,
 * shift each image as the run's augmentation says (if any), then forward and backward (Model.gradientOf: the bits of
 * zeroing the gradients, then forwardBackward). Leaves the shard's gradient **sum** (not mean) in `model.grads` and
 * returns its loss sum and correct count; an empty shard leaves zeros.
 */
export function shardGradient(
  model: Model,
  split: Split,
  order: Uint32Array,
  start: number,
  end: number,
  inputs: ShardInputs,
  augmentation?: Augmentation,
): BatchStats {
  const count = end - start;
  if (count === 0) {
    model.zeroGrads();
    return { lossSum: 0, correct: 0 };
  }
  inputs.reserve(count, split.features);
  gatherBatch(split, order, start, end, inputs.x, inputs.y);
  if (augmentation !== undefined && augmentation.shift > 0) {
    const { seed, epoch, shift } = augmentation;
    shiftImages(inputs.x, count, split.rows, split.cols, order.subarray(start, end), seed, epoch, shift, inputs.scratch);
  }
  return model.gradientOf(inputs.x, inputs.y, count);
}
