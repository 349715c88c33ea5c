import { checkModelSpec, makeOptimizer, makeSchedule, Model, ConfigError, type Optimizer } from '@gradq/nn';
import { limitSamples, stepsPerEpoch, type Dataset, type Split } from '@gradq/data';
import { checkModelFits } from './model-fit.js';
import { parseScheduleSpec } from './schedule-spec.js';
import type { TrainConfig } from './train-config.js';
import { makeReplicaFrom, type ReplicaSpec } from './replica-spec.js';

/** The largest activations (and their gradients) one shard may need: 1 GiB, well below WebAssembly's 4 GB. */
export const MAX_SHARD_ACTIVATION_BYTES = 2 ** 30;

/** A model and optimizer set up for a config and dataset: what a trainer and a gradient source share. */
export interface TrainingSetup {
  config: TrainConfig;
  train: Split;
  test: Split;
  model: Model;
  optimizer: Optimizer;
  stepsPerEpoch: number;
  totalSteps: number;
}

/** Builds model, optimizer and schedule, after checking the config against the dataset. */
export function setUpTraining(config: TrainConfig, dataset: Dataset): TrainingSetup {
  const train =
    config.trainSamples === undefined
      ? dataset.train
      : limitSamples(dataset.train, config.trainSamples, { samples: `training samples of ${dataset.name}`, about: 'trainSamples' });
  // The optimizer before the model: the model's parameters and gradients live where its kernel updates and sums them.
  const spec = checkModelSpec(config.model);
  const perEpoch = stepsPerEpoch(train.count, config.batch);
  const totalSteps = perEpoch * config.epochs;
  const schedule = makeSchedule(config.lr, parseScheduleSpec(config.schedule, config.warmup, perEpoch, totalSteps));
  const optimizer = makeOptimizer(config.optimizer, Model.parameterCount(spec), schedule, optimizerHyper(config));
  const model = new Model(spec, { seed: config.seed, init: config.init, storage: optimizer.modelStorage() });
  checkModelFits(model, { name: dataset.name, rows: train.rows, cols: train.cols, classes: dataset.classNames.length });
  if (config.batch > train.count) {
    throw new ConfigError(
      `a batch of ${config.batch} is larger than the ${train.count} training samples; use a batch of ${train.count} or less`,
      {
        about: 'batch',
      },
    );
  }
  // A shard's activations and their gradients, in one process: at most MAX_SHARD_ACTIVATION_BYTES.
  const shardBytes = 2 * 4 * Math.ceil(config.batch / config.shards) * model.activationFloats;
  if (shardBytes > MAX_SHARD_ACTIVATION_BYTES) {
    throw new ConfigError(
      `a shard of ${Math.ceil(config.batch / config.shards)} samples of model ${model.name} needs ${Math.ceil(shardBytes / 2 ** 20)} MB of activations, more than ${MAX_SHARD_ACTIVATION_BYTES / 2 ** 20} MB (use a smaller batch or more shards)`,
      { about: 'batch' },
    );
  }
  return { config, train, test: dataset.test, model, optimizer, stepsPerEpoch: perEpoch, totalSteps };
}

/** The replica spec of the setup: its model, optimizer, schedule and the optimizer's resolved hyperparameters. */
export function replicaSpec(setup: TrainingSetup): ReplicaSpec {
  const { config, optimizer } = setup;
  return {
    model: config.model, optimizer: config.optimizer, lr: config.lr, schedule: config.schedule, warmup: config.warmup,
    momentum: optimizer.hyper.momentum, weightDecay: optimizer.hyper.weightDecay, stepsPerEpoch: setup.stepsPerEpoch, totalSteps: setup.totalSteps,
  }; // prettier-ignore
}

/** A second model and optimizer of the setup's spec, optimizer and schedule: the scratch replica of local SGD rounds. */
export function makeReplica(setup: TrainingSetup): { model: Model; optimizer: Optimizer } {
  return makeReplicaFrom(replicaSpec(setup));
}

function optimizerHyper(config: TrainConfig) {
  return {
    ...(config.weightDecay !== undefined && { weightDecay: config.weightDecay }),
    ...(config.momentum !== undefined && { momentum: config.momentum }),
  };
}
