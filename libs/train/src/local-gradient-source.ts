import {
  addInto,
  decodeGradientInto,
  encodedGradientBytes,
  type GradientCodec,
  type Model,
  type Optimizer,
  type OptimizerState,
} from '@gradq/nn';
import type { Split } from '@gradq/data';
import type { GradientSource, StepPlan, StepStats } from './gradient-source.js';
import { shardGradient, ShardInputs } from './shard-gradient.js';
import { replicaRound, type ReplicaResult } from './local-round.js';
import { CompressionScratch, compressShardGradient, keepsResidual, residualBytes, type ShardResiduals } from './shard-compression.js';

/** Computes every shard in this process with the trainer's own model (whose params are the trainer's). */
export class LocalGradientSource implements GradientSource {
  private readonly inputs = new ShardInputs();
  /** --compress: each shard's stored residual (error feedback), by shard; null until the shard has one. */
  private residuals: ShardResiduals = [];
  private readonly compression = new CompressionScratch();
  private encoded = new Uint8Array(0);
  private decoded = new Float32Array(0);

  constructor(
    private readonly model: Model,
    private readonly split: Split,
    /** The run's seed and largest image shift (0: no augmentation). */
    private readonly augment: { seed: number; shift: number },
    /** For local SGD rounds: a scratch model and inner optimizer (makeReplica) that every replica reuses in turn. */
    private readonly replica?: { model: Model; optimizer: Optimizer },
    /** How shard sums travel (--compress): encoded and decoded here as a worker and the coordinator would. */
    private readonly codec: GradientCodec = 'none',
  ) {}

  async residualState(): Promise<ShardResiduals> {
    return this.residuals.map((r) => (r === null ? null : r.slice()));
  }

  async restoreResiduals(residuals: ShardResiduals, _nextStep: number): Promise<void> {
    this.residuals = residuals.map((r) => (r === null ? null : r.slice()));
  }

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
    for (const [k, [start, end]] of plan.shards.entries()) {
      if (end === start) continue; // an empty shard of a last, partial batch adds nothing
      const stats = shardGradient(this.model, this.split, plan.order, start, end, this.inputs, augmentation);
      if (this.codec === 'none') addInto(sum, this.model.grads);
      else this.addCompressed(k, sum);
      lossSum += stats.lossSum;
      correct += stats.correct;
    }
    return { lossSum, correct };
  }

  /** Shard k's gradient (in the model's grads) as the coordinator would add it: encoded, decoded, then added. */
  private addCompressed(k: number, sum: Float32Array): void {
    const grads = this.model.grads;
    const n = grads.length;
    const size = encodedGradientBytes(this.codec, n);
    if (this.encoded.byteLength !== size) this.encoded = new Uint8Array(size);
    if (this.decoded.length !== n) this.decoded = new Float32Array(n);
    if (keepsResidual(this.codec)) {
      // The shard's residual is updated in place (compressShardGradient reads all of it before it writes).
      while (this.residuals.length <= k) this.residuals.push(null);
      const residual = this.residuals[k] ?? null;
      const next = residual ?? new Uint8Array(residualBytes(n));
      compressShardGradient(this.codec, grads, residual, this.encoded, next, this.compression);
      this.residuals[k] = next;
    } else compressShardGradient(this.codec, grads, null, this.encoded, null, this.compression);
    decodeGradientInto(this.codec, this.encoded, this.decoded);
    addInto(sum, this.decoded);
  }

  async close(): Promise<void> {
    // Nothing to release: the model and buffers belong to the trainer.
  }
}
