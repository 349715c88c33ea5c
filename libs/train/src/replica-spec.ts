import { checkModelSpec, makeOptimizer, makeSchedule, Model, type OptimizerName, type Optimizer } from '@gradq/nn';
import { epochOrder, planStep, stepsPerEpoch } from '@gradq/data';
import type { StepPlan } from './gradient-source.js';
import { parseScheduleSpec } from './schedule-spec.js';

/**
 * What a local SGD replica's inner optimizer is made of, in plain values that travel in a cluster round job: the
 * run's optimizer, learning rate and schedule (evaluated at the global step), and its hyperparameters as the run's
 * optimizer resolved them. The in-process trainer and every worker make their replica from it with makeReplicaFrom
 * (one recipe), so that a replica's inner steps give the same bits wherever they run.
 */
export interface ReplicaSpec {
  model: string;
  optimizer: OptimizerName;
  lr: number;
  schedule: string;
  warmup: number;
  momentum: number;
  weightDecay: number;
  stepsPerEpoch: number;
  totalSteps: number;
}

/**
 * The ReplicaSpec of a run described by plain fields (a cluster round job's): its step counts follow from the
 * sample count, batch and epochs as in setUpTraining.
 */
export function replicaSpecFor(
  run: Omit<ReplicaSpec, 'optimizer' | 'stepsPerEpoch' | 'totalSteps'> & {
    optimizer: string;
    trainSamples: number;
    batch: number;
    epochs: number;
  },
): ReplicaSpec {
  const perEpoch = stepsPerEpoch(run.trainSamples, run.batch);
  const { model, lr, schedule, warmup, momentum, weightDecay } = run;
  const optimizer = run.optimizer as OptimizerName; // makeOptimizer refuses a name it does not know
  return { model, optimizer, lr, schedule, warmup, momentum, weightDecay, stepsPerEpoch: perEpoch, totalSteps: perEpoch * run.epochs };
}

/** A model and an inner optimizer for `spec`; the model's parameters are overwritten by every round (any init will do). */
export function makeReplicaFrom(spec: ReplicaSpec): { model: Model; optimizer: Optimizer } {
  const schedule = makeSchedule(spec.lr, parseScheduleSpec(spec.schedule, spec.warmup, spec.stepsPerEpoch, spec.totalSteps));
  const optimizer = makeOptimizer(spec.optimizer, Model.parameterCount(checkModelSpec(spec.model)), schedule, {
    momentum: spec.momentum,
    weightDecay: spec.weightDecay,
  });
  return { model: new Model(spec.model, { storage: optimizer.modelStorage() }), optimizer };
}

/**
 * The StepPlans of the round of global steps [first, end) over `n` samples in batches of `batch`, cut into `shards`
 * (libs/data's planStep), with the epoch's sample order: what the trainer hands a GradientSource's round() and
 * what a worker recomputes from a round job. `order` may be given when the caller holds the epoch's order already.
 */
export function roundSteps(
  n: number,
  batch: number,
  shards: number,
  seed: number,
  first: number,
  end: number,
  order?: Uint32Array,
): StepPlan[] {
  const plan = planStep(n, batch, shards, first);
  const epochOrderOf = order ?? epochOrder(seed, plan.epoch, n);
  const steps: StepPlan[] = [Object.assign(plan, { globalStep: first, order: epochOrderOf })];
  for (let g = first + 1; g < end; g++) steps.push(stepPlan(n, batch, shards, g, epochOrderOf));
  return steps;
}

/**
 * The StepPlan of global step `globalStep` (libs/data's planStep, with the step and the epoch's `order`): what the
 * trainer hands a GradientSource's step(), one object a step (no array around it, no copy of planStep's result).
 */
export function stepPlan(n: number, batch: number, shards: number, globalStep: number, order: Uint32Array): StepPlan {
  return Object.assign(planStep(n, batch, shards, globalStep), { globalStep, order });
}
