import type { Model, Optimizer } from '@gradq/nn';
import { makeReplicaFrom, type ReplicaSpec } from '@gradq/train';

/**
 * The replica (scratch model and inner optimizer) of the last ReplicaSpec seen, with the θ it last fetched: a
 * worker serves one run at a time, and the replicas of a round share θ.
 */
export class RoundReplicas {
  private key = '';
  private entry?: { model: Model; optimizer: Optimizer; theta: Float32Array; state: Float32Array; paramsKey: string };

  /** The replica of `spec` if it is the one made last (nothing is made). */
  peek(spec: ReplicaSpec): ReturnType<RoundReplicas['get']> | undefined {
    return this.entry !== undefined && JSON.stringify(spec) === this.key ? this.entry : undefined;
  }

  get(spec: ReplicaSpec): { model: Model; optimizer: Optimizer; theta: Float32Array; state: Float32Array; paramsKey: string } {
    const key = JSON.stringify(spec);
    if (this.entry === undefined || key !== this.key) {
      this.entry = undefined; // a spec that fails to build leaves nothing half made
      const { model, optimizer } = makeReplicaFrom(spec);
      const n = model.params.length;
      this.entry = { model, optimizer, theta: new Float32Array(n), state: new Float32Array(0), paramsKey: '' };
      this.key = key;
    }
    return this.entry;
  }
}
