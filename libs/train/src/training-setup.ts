import { makeOptimizer, makeSchedule, Model, ConfigError, type Optimizer } from '@gradq/nn';
import { limitSamples, stepsPerEpoch, type Dataset, type Split } from '@gradq/data';
import { parseScheduleSpec } from './schedule-spec.js';
import type { TrainConfig } from './train-config.js';

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
  const model = new Model(config.model, { seed: config.seed, init: config.init });
  if (model.inputSize !== train.features) {
    throw new ConfigError(
      `model ${config.model} takes ${model.inputSize} inputs but ${config.dataset} images have ${train.features} pixels`,
      {
        about: 'model',
      },
    );
  }
  if (model.classes !== dataset.classNames.length) {
    throw new ConfigError(
      `model ${config.model} has ${model.classes} outputs but ${config.dataset} has ${dataset.classNames.length} classes`,
      {
        about: 'model',
      },
    );
  }
  if (config.batch > train.count) {
    throw new ConfigError(
      `a batch of ${config.batch} is larger than the ${train.count} training samples; use a batch of ${train.count} or less`,
      {
        about: 'batch',
      },
    );
  }
  const perEpoch = stepsPerEpoch(train.count, config.batch);
  const totalSteps = perEpoch * config.epochs;
  const schedule = makeSchedule(config.lr, parseScheduleSpec(config.schedule, config.warmup, perEpoch, totalSteps));
  const hyper = {
    ...(config.weightDecay !== undefined && { weightDecay: config.weightDecay }),
    ...(config.momentum !== undefined && { momentum: config.momentum }),
  };
  const optimizer = makeOptimizer(config.optimizer, model.params.length, schedule, hyper);
  return { config, train, test: dataset.test, model, optimizer, stepsPerEpoch: perEpoch, totalSteps };
}
