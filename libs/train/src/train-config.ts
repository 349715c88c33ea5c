import type { GradientCodec, InitScheme, OptimizerName } from '@gradq/nn';
import type { OuterSettings } from './local-round.js';
import type { SyncMode } from './sync-mode.js';

/** Everything that determines a training run (with the seed, it determines params_sha256), and where it writes. */
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
  /** Data augmentation: move each training image by up to this many pixels each way (0: none). */
  augmentShift: number;
  /** How the shards synchronise (undefined: sync, one optimizer step per global batch). */
  sync?: SyncMode;
  /** The outer optimizer of local SGD (undefined: plain averaging, lr 1, momentum 0). */
  outer?: OuterSettings;
  /** How shard gradient sums travel (undefined: none, float32); int8 with error feedback (shard-compression.ts). */
  compress?: GradientCodec;
  /** Where to save the trained model (and optimizer state). */
  out?: string;
  /** A folder for checkpoints, written every checkpointEvery steps. */
  checkpoint?: string;
  checkpointEvery: number;
  /** Continue from the checkpoint in `checkpoint` (start afresh when there is none). */
  resume: boolean;
}
