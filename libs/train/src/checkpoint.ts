import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { decodeModel, encodeModel, type Model, type Optimizer } from '@gradq/nn';
import { writeFileAtomic } from '@gradq/cli';
import { CheckpointError } from './checkpoint-error.js';
import type { TrainConfig } from './train-config.js';

export const CHECKPOINT_FILE = 'checkpoint.gradq';

/** Where training stands after a step: enough, with the config, to continue exactly. */
export interface TrainCursor {
  nextStep: number; // global step to run next
  epochLoss: number; // loss and correct count of the current epoch so far
  epochCorrect: number;
  trainSeconds: number;
}

/**
 * The settings that decide the parameters of a run. A checkpoint records them; resuming refuses to continue
 * with different ones. (The data order needs no saved RNG state: it is epochOrder(seed, epoch), a pure function.)
 * The keys are those of the checkpoint format (kebab-case, as written since its first version).
 */
function fingerprint(c: TrainConfig): Record<string, unknown> {
  return {
    dataset: c.dataset,
    model: c.model,
    init: c.init,
    epochs: c.epochs,
    batch: c.batch,
    shards: c.shards,
    optimizer: c.optimizer,
    lr: c.lr,
    schedule: c.schedule,
    warmup: c.warmup,
    'weight-decay': c.weightDecay ?? null,
    momentum: c.momentum ?? null,
    seed: c.seed,
    'train-samples': c.trainSamples ?? null,
    'augment-shift': c.augmentShift,
  };
}

/** What a setting was in checkpoints written before it existed. */
const BEFORE_IT_EXISTED: Record<string, unknown> = { 'augment-shift': 0 };

/** Writes checkpoints to DIR/checkpoint.gradq (atomically) and reads them back to resume a run. */
export class Checkpointer {
  constructor(
    readonly dir: string,
    readonly every: number,
  ) {}

  get file(): string {
    return join(this.dir, CHECKPOINT_FILE);
  }

  save(config: TrainConfig, model: Model, optimizer: Optimizer, cursor: TrainCursor): void {
    mkdirSync(this.dir, { recursive: true });
    const meta = { kind: 'checkpoint', config: fingerprint(config), ...cursor };
    writeFileAtomic(this.file, encodeModel(model, optimizer.getState(), meta));
  }

  /** Loads the checkpoint into model and optimizer and returns the cursor, or undefined when there is none. */
  load(config: TrainConfig, model: Model, optimizer: Optimizer): TrainCursor | undefined {
    if (!existsSync(this.file)) return undefined;
    const saved = decodeModel(readFileSync(this.file), this.file);
    const { meta } = saved;
    if (meta.kind !== 'checkpoint' || typeof meta.config !== 'object' || meta.config === null || !saved.optimizer) {
      throw new CheckpointError(`${this.file} is a model file, not a checkpoint`);
    }
    const then = meta.config as Record<string, unknown>;
    for (const [setting, value] of Object.entries(fingerprint(config))) {
      const was = Object.hasOwn(then, setting) ? then[setting] : BEFORE_IT_EXISTED[setting];
      if (was !== value) {
        throw new CheckpointError(`${this.file} was made with ${setting} ${String(was)}, this run has ${setting} ${String(value)}`);
      }
    }
    const { nextStep, epochLoss, epochCorrect, trainSeconds } = meta;
    const cursor = { nextStep, epochLoss, epochCorrect, trainSeconds };
    if (!Object.values(cursor).every((v) => typeof v === 'number' && Number.isFinite(v) && v >= 0) || !Number.isInteger(cursor.nextStep)) {
      throw new CheckpointError(`${this.file} has a damaged cursor ${JSON.stringify(cursor)}`);
    }
    if (saved.model.name !== model.name) throw new CheckpointError(`${this.file} holds a ${saved.model.name}, not a ${model.name}`);
    model.params.set(saved.model.params);
    optimizer.setState(saved.optimizer);
    if (optimizer.t !== cursor.nextStep) {
      throw new CheckpointError(`${this.file} is inconsistent (optimizer at step ${optimizer.t}, cursor at ${cursor.nextStep})`);
    }
    return cursor as TrainCursor;
  }
}
