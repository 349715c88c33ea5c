import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { checkWritableTarget, UsageError, type ParsedFlags } from '@gradq/cli';
import { checkShardCount } from '@gradq/data';
import { checkModelSpec } from '@gradq/nn';
import { CHECKPOINT_FILE, parseSyncMode, type OuterSettings, type TrainConfig } from '@gradq/train';
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
  if (f.compress !== 'none') config.compress = f.compress;
  const sync = parseSyncMode(f.sync);
  if (sync.kind === 'local') {
    config.sync = sync;
    config.outer = outerSettings(f);
  } else {
    for (const flag of ['outer-lr', 'outer-momentum'] as const) {
      if (f[flag] !== undefined) throw new UsageError(`--${flag} is for local SGD only (use it with --sync local:H)`);
    }
    if (f.outer !== 'avg') throw new UsageError(`--outer ${f.outer} is for local SGD only (use it with --sync local:H)`);
  }
  if (config.compress !== undefined && sync.kind === 'local') {
    throw new UsageError(`--compress ${f.compress} compresses the gradients of --sync sync only; drop it or use --sync sync`);
  }
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

/** The outer optimizer of --sync local:H from --outer, --outer-lr and --outer-momentum. */
function outerSettings(f: ParsedFlags<typeof TRAIN_FLAGS>): OuterSettings {
  if (f.outer === 'avg') {
    if (f['outer-momentum'] !== undefined) throw new UsageError('--outer-momentum needs --outer nesterov (avg has no momentum)');
    return { lr: f['outer-lr'] ?? 1, momentum: 0 };
  }
  const momentum = f['outer-momentum'] ?? 0.9;
  if (!(momentum > 0 && momentum < 1)) throw new UsageError(`--outer-momentum ${momentum}: use a number in (0, 1), e.g. 0.9`);
  return { lr: f['outer-lr'] ?? 0.7, momentum };
}
