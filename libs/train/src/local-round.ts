import { addInto, firstNonFinite, type Model, type Optimizer, type OptimizerState } from '@gradq/nn';
import { CheckpointError } from './checkpoint-error.js';
import { DivergedError } from './diverged-error.js';
import type { GradientSource, StepPlan, StepStats } from './gradient-source.js';
import type { Split } from '@gradq/data';

import { shardGradient, type ShardInputs } from './shard-gradient.js';

/**
 * Local SGD (DiLoCo-style) as pure round logic: ONE recipe for the in-process run and for workers.
 * A round covers H consecutive global steps of one epoch (rounds never cross an epoch end: the last round of an
 * epoch may be shorter). Shard k of the K shards is replica k: from the round's θ it runs one inner step per global
 * step of the round on the samples planStep gives shard k, with its own inner optimizer (the run's optimizer and
 * schedule, its step counter set to the global step so the schedule is evaluated there), dividing by its shard's
 * sample count. Its outer gradient is Δ_k = θ_round − θ_k,end. The coordinator adds the Δ_k in shard order
 * (addInto), divides by the number of replicas that took a step, and applies the outer optimizer.
 */

/** The global steps [first, end) of the round that starts at `first`: at most h, never past the epoch's end. */
export function roundEnd(first: number, h: number, stepsPerEpoch: number): number {
  const epochEnd = (Math.floor(first / stepsPerEpoch) + 1) * stepsPerEpoch;
  return Math.min(first + h, epochEnd);
}

/** What replica k of a round reports. */
export interface ReplicaResult {
  /** Δ_k = θ_round − θ_k,end (float32, element by element). */
  delta: Float32Array;
  lossSum: number;
  correct: number;
  /** Inner steps taken (a step whose shard is empty is skipped). */
  steps: number;
  /** The inner optimizer's state at the round's end, for the replica's next round. */
  state: OptimizerState;
}

/** The state of an inner optimizer that has taken no step: what every replica starts the run from. */
export function freshReplicaState(optimizer: Optimizer): OptimizerState {
  const s = optimizer.getState();
  for (const b of s.buffers) b.fill(0);
  return { ...s, t: 0 };
}

/** Where replicaRound writes Δ_k (n values) and the new state's buffers (n each) instead of new arrays. */
export interface ReplicaOutput {
  delta: Float32Array;
  buffers: readonly Float32Array[];
}

/**
 * Runs replica `shard` through the round's `steps` (consecutive StepPlans of one epoch) with `model` and
 * `optimizer` (a scratch pair reused for every replica: its params are overwritten with `theta`, its state with
 * `state`). Leaves `model.params` at the replica's end. Δ_k and the state go into `into` when given (a worker's
 * result payload: 1.2 MB a replica with Adam on the MLP that are then not allocated round after round), else into
 * new arrays; the values are the same.
 */
export function replicaRound(
  model: Model,
  optimizer: Optimizer,
  split: Split,
  steps: readonly StepPlan[],
  shard: number,
  theta: Float32Array,
  state: OptimizerState,
  inputs: ShardInputs,
  augment: { seed: number; shift: number },
  into?: ReplicaOutput,
): ReplicaResult {
  if (theta.length !== model.params.length) {
    throw new RangeError(`round θ has ${theta.length} values, the model ${model.params.length}`);
  }
  if (into) {
    // Both checked before the round is computed, not after.
    if (into.delta.length !== theta.length) throw new RangeError(`Δ into ${into.delta.length} values, θ has ${theta.length}`);
    optimizer.checkStateBuffers(into.buffers);
  }
  model.params.set(theta);
  optimizer.setState(state);
  let lossSum = 0;
  let correct = 0;
  let taken = 0;
  for (const plan of steps) {
    const [start, end] = plan.shards[shard];
    if (end === start) continue; // an empty shard of a last, partial batch takes no step
    const stats = shardGradient(model, split, plan.order, start, end, inputs, { ...augment, epoch: plan.epoch });
    optimizer.t = plan.globalStep;
    optimizer.step(model.params, model.grads, end - start);
    lossSum += stats.lossSum;
    correct += stats.correct;
    taken++;
  }
  const delta = into?.delta ?? new Float32Array(theta.length);
  const p = model.params;
  for (let i = 0; i < delta.length; i++) delta[i] = theta[i] - p[i];
  const end = into ? optimizer.stateInto(into.buffers) : optimizer.getState();
  return { delta, lossSum, correct, steps: taken, state: end };
}

/** The outer optimizer's settings: plain averaging is lr 1, momentum 0; DiLoCo uses Nesterov, lr 0.7, momentum 0.9. */
export interface OuterSettings {
  lr: number;
  /** 0: plain (no momentum buffer is used); > 0: Nesterov momentum (PyTorch's SGD form). */
  momentum: number;
}

/**
 * The outer step of a round: Δ = deltaSum / replicas (the replicas' deltas added in shard order by the caller),
 * then with momentum μ > 0 (Nesterov): v = μ·v + Δ; θ -= lr · (Δ + μ·v); with μ = 0: θ -= lr · Δ.
 */
export class OuterOptimizer {
  readonly velocity: Float32Array;
  /** Rounds applied. */
  t = 0;

  constructor(
    readonly size: number,
    readonly settings: OuterSettings,
  ) {
    this.velocity = new Float32Array(size);
  }

  step(params: Float32Array, deltaSum: Float32Array, replicas: number): void {
    if (params.length !== this.size || deltaSum.length !== this.size) {
      throw new RangeError(`outer optimizer for ${this.size} parameters got ${params.length} and ${deltaSum.length}`);
    }
    if (!Number.isInteger(replicas) || replicas < 1) throw new RangeError(`replicas must be a whole number >= 1, got ${replicas}`);
    const { lr, momentum: mu } = this.settings;
    const v = this.velocity;
    for (let i = 0; i < params.length; i++) {
      const d = Math.fround(deltaSum[i] / replicas);
      if (mu === 0) {
        params[i] -= lr * d;
      } else {
        const vi = Math.fround(mu * v[i] + d);
        v[i] = vi;
        params[i] -= lr * (d + mu * vi);
      }
    }
    this.t++;
  }
}

/** Adds replica deltas into `sum` in shard order (the caller passes them sorted by shard) and counts replicas that stepped. */
export function sumDeltas(results: readonly ReplicaResult[], sum: Float32Array): { replicas: number; lossSum: number; correct: number } {
  sum.fill(0);
  let replicas = 0;
  let lossSum = 0;
  let correct = 0;
  for (const r of results) {
    if (r.steps === 0) continue;
    addInto(sum, r.delta);
    replicas++;
    lossSum += r.lossSum;
    correct += r.correct;
  }
  return { replicas, lossSum, correct };
}

/**
 * The coordinator's side of local SGD, for the trainer: the K replicas' inner optimizer states between rounds
 * (fresh at the run's start), the outer optimizer, and one round: the source runs the replicas, their deltas are
 * checked, added in shard order and applied.
 */
export class LocalRounds {
  private states: OptimizerState[];
  private readonly outer: OuterOptimizer;
  private readonly deltaSum: Float32Array;

  constructor(
    readonly h: number,
    readonly replicas: number,
    /** The run's optimizer: its fresh state is every replica's first. */
    inner: Optimizer,
    settings: OuterSettings = { lr: 1, momentum: 0 },
  ) {
    const fresh = freshReplicaState(inner);
    this.states = Array.from({ length: replicas }, () => ({ ...fresh, buffers: fresh.buffers.map((b) => b.slice()) }));
    this.outer = new OuterOptimizer(inner.size, settings);
    this.deltaSum = new Float32Array(inner.size);
  }

  async run(source: GradientSource, steps: readonly StepPlan[], params: Float32Array): Promise<StepStats> {
    if (!source.round) throw new Error('this gradient source runs synchronous steps only, not local SGD rounds');
    const results = await source.round(steps, params, this.states);
    if (results.length !== this.replicas) throw new Error(`a round gave ${results.length} replica results, expected ${this.replicas}`);
    for (const r of results) {
      const bad = firstNonFinite(r.delta);
      if (bad >= 0) throw new DivergedError(steps[steps.length - 1].globalStep, bad, r.delta[bad]);
    }
    const { replicas, lossSum, correct } = sumDeltas(results, this.deltaSum);
    if (replicas > 0) this.outer.step(params, this.deltaSum, replicas);
    this.states = results.map((r) => r.state);
    return { lossSum, correct };
  }

  /** Buffers of each replica's inner optimizer state (0 for plain SGD, 1 for momentum, 2 for Adam). */
  get stateBuffers(): number {
    return this.states[0]?.buffers.length ?? 0;
  }

  /** Outer steps applied (rounds in which some replica took a step), across resumes. */
  get outerSteps(): number {
    return this.outer.t;
  }

  /** What a checkpoint keeps: the replicas' inner optimizer states and the outer optimizer's velocity and count. */
  getState(): LocalRoundsState {
    return {
      replicas: this.states.map((s) => ({ ...s, buffers: s.buffers.map((b) => b.slice()) })),
      outerT: this.outer.t,
      velocity: this.outer.velocity.slice(),
    };
  }

  /** Restores a saved state after checking that it fits (K replicas of the run's optimizer, sizes). */
  setState(state: LocalRoundsState): void {
    const size = this.outer.size;
    const fresh = this.states[0];
    if (state.replicas.length !== this.replicas) {
      throw new CheckpointError(`saved local SGD state has ${state.replicas.length} replicas, this run ${this.replicas}`);
    }
    for (const [k, r] of state.replicas.entries()) {
      if (r.name !== fresh.name || r.buffers.length !== fresh.buffers.length || r.buffers.some((b) => b.length !== size)) {
        throw new CheckpointError(
          `saved local SGD replica ${k} is a ${r.name} state with ${r.buffers.length} buffers, expected ${fresh.name} with ${fresh.buffers.length} of ${size}`,
        );
      }
      if (!Number.isInteger(r.t) || r.t < 0)
        throw new CheckpointError(`saved local SGD replica ${k} is at step ${r.t}, not a whole number >= 0`);
    }
    if (state.velocity.length !== size)
      throw new CheckpointError(`saved outer velocity has ${state.velocity.length} values, expected ${size}`);
    if (!Number.isInteger(state.outerT) || state.outerT < 0)
      throw new CheckpointError(`saved outer step ${state.outerT} is not a whole number >= 0`);
    this.states = state.replicas.map((s) => ({ ...s, hyper: { ...fresh.hyper }, buffers: s.buffers.map((b) => b.slice()) }));
    this.outer.velocity.set(state.velocity);
    this.outer.t = state.outerT;
  }
}

/** LocalRounds' state in a checkpoint. */
export interface LocalRoundsState {
  replicas: OptimizerState[];
  outerT: number;
  velocity: Float32Array;
}
