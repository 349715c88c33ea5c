import { encodeResidual, KEY_TTL_MS, type MessageSigner, readResidual, type RunKeys, type TensorStore } from '@gradq/cluster';
import type { ShardResiduals } from '@gradq/train';

/**
 * Where each logical shard's error-feedback residual is (--compress int8): the step whose kept result wrote it, by
 * shard. A job for shard k names the key of that residual (in) and the key of the one it writes (out, naming its
 * own step); only a kept result moves shard k on to its step, so a late or duplicate result, or a rejected one,
 * never becomes the residual a later step reads. A shard recomputed by another worker reads the same key and so
 * writes the same bytes.
 */
export class ShardResidualKeys {
  /** By shard: the step of its residual, or -1 (none yet: zeros). */
  private readonly at: number[] = [];

  constructor(
    private readonly keys: RunKeys,
    private readonly residualBytes: number,
    private readonly signer?: MessageSigner,
  ) {}

  /** The key job (step, shard) reads ('' for none). */
  in(shard: number): string {
    const at = this.at[shard] ?? -1;
    return at < 0 ? '' : this.keys.residual(at, shard);
  }

  /** The key job (step, shard) writes. */
  out(step: number, shard: number): string {
    return this.keys.residual(step, shard);
  }

  /** Shard `shard` has a kept result at `step`: its residual is now that step's. Returns the key it no longer needs. */
  accept(step: number, shard: number): string | undefined {
    const before = this.in(shard);
    while (this.at.length <= shard) this.at.push(-1);
    this.at[shard] = step;
    return before === '' ? undefined : before;
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
   * nextStep - 1 (its own name in this run; any name would do, the next jobs name it).
   */
  async restore(tensors: Pick<TensorStore, 'set'>, residuals: ShardResiduals, nextStep: number): Promise<void> {
    for (const [k, r] of residuals.entries()) {
      if (r === null) continue;
      if (r.byteLength !== this.residualBytes)
        throw new Error(`shard ${k}: residual of ${r.byteLength} bytes, expected ${this.residualBytes}`);
      const key = this.keys.residual(nextStep - 1, k);
      await tensors.set(key, encodeResidual(r, key, this.signer), KEY_TTL_MS);
      this.accept(nextStep - 1, k);
    }
  }
}
