import {
  encodeResidual,
  InvalidMessageError,
  KEY_TTL_MS,
  type MessageSigner,
  readResidual,
  type RunKeys,
  type TensorStore,
} from '@gradq/cluster';
import type { ShardResiduals } from '@gradq/train';

/**
 * Where each logical shard's error-feedback residual is (--compress int8): the step and attempt whose kept result
 * wrote it, by shard. A job for shard k names the key of that residual (in) and the key of the one it writes (out,
 * naming its own step and attempt); only a kept result moves shard k on to its key, so a late or duplicate result,
 * or a rejected one, never becomes the residual a later step reads, and, writing under its own attempt's key, never
 * overwrites the kept one. A shard recomputed by another worker reads the same key and so writes the same bytes.
 */
export class ShardResidualKeys {
  /** By shard: the step and attempt of its residual (step -1: none yet, zeros). */
  private readonly at: Array<{ step: number; attempt: number }> = [];

  constructor(
    private readonly keys: RunKeys,
    private readonly residualBytes: number,
    private readonly signer?: MessageSigner,
  ) {}

  /** The key job (step, shard) reads ('' for none). */
  in(shard: number): string {
    const at = this.at[shard];
    return at === undefined || at.step < 0 ? '' : this.keys.residual(at.step, shard, at.attempt);
  }

  /** The key attempt `attempt` at (step, shard) writes. */
  out(step: number, shard: number, attempt: number): string {
    return this.keys.residual(step, shard, attempt);
  }

  /**
   * Shard `shard` has a kept result at `step`, from attempt `attempt`: its residual is now the one that attempt
   * wrote. Returns the key it no longer needs.
   */
  accept(step: number, shard: number, attempt: number): string | undefined {
    const before = this.in(shard);
    while (this.at.length <= shard) this.at.push({ step: -1, attempt: 0 });
    this.at[shard] = { step, attempt };
    return before === '' ? undefined : before;
  }

  /** Why shard `shard`'s residual cannot be read from Redis (missing, wrong size, bad signature); null if it can. */
  async unreadable(tensors: Pick<TensorStore, 'get'>, shard: number): Promise<string | null> {
    const key = this.in(shard);
    if (key === '') return null;
    try {
      await readResidual(tensors, key, this.residualBytes, this.signer);
      return null;
    } catch (e) {
      if (e instanceof InvalidMessageError) return e.message;
      throw e;
    }
  }

  /** Every shard's residual as of the last step gathered, read back from Redis (for a checkpoint). */
  async read(tensors: Pick<TensorStore, 'get'>, shards: number): Promise<ShardResiduals> {
    const out: ShardResiduals = [];
    for (let k = 0; k < shards; k++) {
      const key = this.in(k);
      if (key === '') out.push(null);
      else {
        out.push(await readResidual(tensors, key, this.residualBytes, this.signer));
      }
    }
    return out;
  }

  /**
   * Puts a checkpoint's residuals back for a run resumed at `nextStep`: each is written under the key of step
   * nextStep - 1, attempt 0 (its own name in this run; any name would do, the next jobs name it).
   */
  async restore(tensors: Pick<TensorStore, 'set'>, residuals: ShardResiduals, nextStep: number): Promise<void> {
    for (const [k, r] of residuals.entries()) {
      if (r === null) continue;
      if (r.byteLength !== this.residualBytes)
        throw new Error(`shard ${k}: residual of ${r.byteLength} bytes, expected ${this.residualBytes}`);
      const key = this.out(nextStep - 1, k, 0);
      await tensors.set(key, encodeResidual(r, key, this.signer), KEY_TTL_MS);
      this.accept(nextStep - 1, k, 0);
    }
  }
}
