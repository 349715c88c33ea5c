import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { checkWritableTarget, UsageError, type ParsedFlags } from '@gradq/cli';
import { checkShardCount } from '@gradq/data';
import { checkModelSpec } from '@gradq/nn';
import { CHECKPOINT_FILE, type TrainConfig } from '@gradq/train';
import type { TRAIN_FLAGS } from './train-flags.js';

/** Checks the flags of `gradq train` that need no data; the rest is checked once the dataset is loaded. */
export function trainConfigFromFlags(f: ParsedFlags<typeof TRAIN_FLAGS>): TrainConfig {
  const config: TrainConfig = {
    dataset: f.dataset,
    dataDir: f['data-dir'],
    model: f.model,
    init: f.init,
    epochs: f.epochs,
    batch: f.batch,
    shards: f.shards,
    optimizer: f.optimizer,
    lr: f.lr,
    schedule: f.schedule,
    warmup: f.warmup,
    weightDecay: f['weight-decay'],
    momentum: f.momentum,
    seed: f.seed,
    trainSamples: f['train-samples'],
    augmentShift: f['augment-shift'],
    out: f.out,
    checkpoint: f.checkpoint,
    checkpointEvery: f['checkpoint-every'],
    resume: f.resume,
  };
  if (config.resume && config.checkpoint === undefined) throw new UsageError('--resume needs --checkpoint DIR (where the checkpoint is)');
  checkModelSpec(config.model);
  checkShardCount(config.shards, config.batch);
  if (config.out !== undefined) checkWritableTarget('--out', config.out);
  if (config.checkpoint !== undefined) {
    try {
      mkdirSync(config.checkpoint, { recursive: true });
    } catch (e) {
      throw new UsageError(
        `--checkpoint ${config.checkpoint}: cannot create the folder (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`,
      );
    }
    checkWritableTarget('--checkpoint', join(config.checkpoint, CHECKPOINT_FILE));
  }
  return config;
}
