import { ConfigError } from '../config-error.js';
import type { ModelStorage } from '../model.js';
import { wasmFloats } from '../kernels/vec-wasm.js';
import type { LrSchedule } from './schedule.js';

export type OptimizerName = 'sgd' | 'momentum' | 'nesterov' | 'adam' | 'adamw';
export const OPTIMIZER_NAMES: readonly OptimizerName[] = ['sgd', 'momentum', 'nesterov', 'adam', 'adamw'];

/** Hyperparameters, all optional; each optimizer reads the ones it uses and checks them. */
export interface OptimizerHyper {
  momentum?: number;
  beta1?: number;
  beta2?: number;
  eps?: number;
  weightDecay?: number;
}

/** What a checkpoint keeps of an optimizer. */
export interface OptimizerState {
  name: OptimizerName;
  hyper: Required<OptimizerHyper>;
  t: number;
  buffers: Float32Array[];
}

/**
 * The shared part of every optimizer: the step counter, the learning rate from the schedule, the input checks.
 * Subclasses write only `update`, which applies one step to all parameters given the summed gradient and the
 * number of samples it sums over (g = gradSum[i] / batch).
 */
export abstract class Optimizer {
  abstract readonly name: OptimizerName;
  /** Updates applied so far. */
  t = 0;
  readonly hyper: Required<OptimizerHyper>;
  protected readonly buffers: Float32Array[];
  private gradSumBuffer: Float32Array | null = null;

  protected constructor(
    readonly size: number,
    readonly schedule: LrSchedule,
    hyper: OptimizerHyper,
    /** How many (size) state buffers to allocate, or the buffers themselves (e.g. views into a kernel's memory). */
    buffers: number | Float32Array[],
  ) {
    this.hyper = {
      momentum: hyper.momentum ?? 0.9,
      beta1: hyper.beta1 ?? 0.9,
      beta2: hyper.beta2 ?? 0.999,
      eps: hyper.eps ?? 1e-8,
      weightDecay: hyper.weightDecay ?? 0,
    };
    const h = this.hyper;
    checkRange('momentum', h.momentum, 0, 1);
    checkRange('beta1', h.beta1, 0, 1);
    checkRange('beta2', h.beta2, 0, 1);
    if (!(Number.isFinite(h.eps) && h.eps > 0)) throw new ConfigError(`Invalid epsilon: ${h.eps} (use a finite number > 0)`);
    if (!(Number.isFinite(h.weightDecay) && h.weightDecay >= 0)) {
      throw new ConfigError(`Invalid weight decay: ${h.weightDecay} (use a finite number >= 0)`);
    }
    this.buffers = typeof buffers === 'number' ? Array.from({ length: buffers }, () => new Float32Array(size)) : buffers;
    const bad = this.buffers.find((b) => b.length !== size);
    if (bad) throw new RangeError(`optimizer for ${size} parameters got a state buffer of ${bad.length} values`);
  }

  /**
   * The array (size) to sum each step's gradient into and pass to step(): one per optimizer, made on the first
   * call, in WebAssembly memory (wasmFloats: adding into it and checking it copy nothing of it) and, for a kernel
   * that reads the gradient from its own memory (Adam's), there, so that step() copies nothing of it either.
   * Any other array of the right length works as well, only with copies.
   */
  gradientSum(): Float32Array {
    this.gradSumBuffer ??= this.makeGradientSum();
    return this.gradSumBuffer;
  }

  /**
   * Arrays of `size` for a Model's parameters and gradients (ModelOptions.storage) that this optimizer's kernel
   * updates and sums in place, copying neither; undefined when it has no such place (any arrays work, with copies).
   * For one model only: the arrays are the same on every call.
   */
  modelStorage(): ModelStorage | undefined {
    return undefined;
  }

  /** Where gradientSum() lives: a wasmFloats array unless the update kernel has its own place for it. */
  protected makeGradientSum(): Float32Array {
    return wasmFloats(this.size);
  }

  /** The learning rate of the next update. */
  get lr(): number {
    return this.schedule(this.t);
  }

  /** One update from the gradient summed over `batch` samples. */
  step(params: Float32Array, gradSum: Float32Array, batch: number): void {
    if (params.length !== this.size || gradSum.length !== this.size) {
      throw new RangeError(`optimizer for ${this.size} parameters got ${params.length} parameters and ${gradSum.length} gradients`);
    }
    if (!Number.isInteger(batch) || batch < 1) throw new RangeError(`batch must be a whole number >= 1, got ${batch}`);
    const lr = this.lr;
    if (!(Number.isFinite(lr) && lr > 0)) throw new ConfigError(`learning rate schedule gave ${lr} at step ${this.t}`);
    this.t++;
    this.update(params, gradSum, batch, lr);
  }

  protected abstract update(params: Float32Array, gradSum: Float32Array, batch: number, lr: number): void;

  getState(): OptimizerState {
    return { name: this.name, hyper: { ...this.hyper }, t: this.t, buffers: this.buffers.map((b) => b.slice()) };
  }

  /** State buffers it keeps (0 for plain SGD, 1 for momentum, 2 for Adam). */
  get stateBuffers(): number {
    return this.buffers.length;
  }

  /**
   * The state as getState() gives it, its buffers copied into `into` (one array of `size` per state buffer) instead of
   * new arrays: a worker answering round after round allocates nothing for it.
   */
  stateInto(into: readonly Float32Array[]): OptimizerState {
    this.checkStateBuffers(into);
    this.buffers.forEach((b, i) => into[i].set(b));
    return { name: this.name, hyper: { ...this.hyper }, t: this.t, buffers: [...into] };
  }

  /** Throws RangeError unless `into` are arrays stateInto can copy this optimizer's state into. */
  checkStateBuffers(into: readonly Float32Array[]): void {
    if (into.length !== this.buffers.length || into.some((b) => b.length !== this.size)) {
      const got = into.map((b) => b.length).join(', ');
      throw new RangeError(`${this.name} state into buffers of [${got}] values, expected ${this.buffers.length} of ${this.size}`);
    }
  }

  /** Restores a saved state after checking that it fits this optimizer. */
  setState(state: OptimizerState): void {
    if (state.name !== this.name) throw new ConfigError(`saved optimizer is "${state.name}", not "${this.name}"`);
    if (!Number.isInteger(state.t) || state.t < 0) throw new ConfigError(`saved optimizer step ${state.t} is not a whole number >= 0`);
    if (state.buffers.length !== this.buffers.length || state.buffers.some((b) => b.length !== this.size)) {
      const got = state.buffers.map((b) => b.length).join(', ');
      throw new ConfigError(`saved ${this.name} state has buffers of [${got}] values, expected ${this.buffers.length} of ${this.size}`);
    }
    this.t = state.t;
    state.buffers.forEach((b, i) => this.buffers[i].set(b));
  }
}

function checkRange(what: string, v: number, lo: number, hi: number): void {
  if (!(v >= lo && v < hi)) throw new ConfigError(`Invalid ${what}: ${v} (use a number in [${lo}, ${hi}))`);
}
