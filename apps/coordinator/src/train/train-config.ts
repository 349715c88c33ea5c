import { type ParsedFlags, checkWritableTarget, UsageError } from '@gradq/cli';
import { parseModelSpec, type InitScheme, type OptimizerName } from '@gradq/nn';

/** Everything that determines a training run (with the seed, it determines params_sha256). */
export interface TrainConfig {
  dataset: string;
  dataDir?: string;
  model: string;
  init: InitScheme;
  epochs: number;
  batch: number;
  shards: number;
  optimizer: OptimizerName;
  lr: number;
  schedule: string;
  warmup: number;
  weightDecay?: number;
  momentum?: number;
  seed: number;
  trainSamples?: number;
  out?: string;
  json: boolean;
  checkpoint?: string;
  checkpointEvery: number;
  resume: boolean;
}

/** Checks the flags of `gradq train` that need no data; the rest is checked once the dataset is loaded. */
export function trainConfigFromFlags(f: ParsedFlags): TrainConfig {
  const config: TrainConfig = {
    dataset: f.dataset as string,
    dataDir: f['data-dir'] as string | undefined,
    model: f.model as string,
    init: f.init as InitScheme,
    epochs: f.epochs as number,
    batch: f.batch as number,
    shards: f.shards as number,
    optimizer: f.optimizer as OptimizerName,
    lr: f.lr as number,
    schedule: f.schedule as string,
    warmup: f.warmup as number,
    weightDecay: f['weight-decay'] as number | undefined,
    momentum: f.momentum as number | undefined,
    seed: f.seed as number,
    trainSamples: f['train-samples'] as number | undefined,
    out: f.out as string | undefined,
    json: f.json === true,
    checkpoint: f.checkpoint as string | undefined,
    checkpointEvery: f['checkpoint-every'] as number,
    resume: f.resume === true,
  };
  if (config.resume && config.checkpoint === undefined) throw new UsageError('--resume needs --checkpoint DIR (where the checkpoint is)');
  parseModelSpec(config.model);
  if (config.shards > config.batch) {
    throw new UsageError(`--shards ${config.shards} exceeds --batch ${config.batch}: each shard needs at least one sample`);
  }
  if (config.out !== undefined) checkWritableTarget('--out', config.out);
  return config;
}
