import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DamagedModelFileError, decodeModel, encodeModel, verifyModelFile, type Model, type Optimizer } from '@gradq/nn';
import { writeFileAtomic } from '@gradq/cli';
import { CheckpointError } from './checkpoint-error.js';
import type { TrainConfig } from './train-config.js';

export const CHECKPOINT_FILE = 'checkpoint.gradq';
/** The checkpoint before the last one, kept until a newer one has been written and read back intact. */
export const PREVIOUS_CHECKPOINT_FILE = 'checkpoint.gradq.prev';

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

/** A checkpoint read back: where training stands, and whether the file's checksum was checked (not in version 1). */
export interface LoadedCheckpoint {
  cursor: TrainCursor;
  verified: boolean;
}

/**
 * Writes checkpoints to DIR/checkpoint.gradq and reads them back to resume a run. A new checkpoint is written
 * beside the last one, read back and checked (its checksum), and only then renamed over it; the one it replaces
 * stays as DIR/checkpoint.gradq.prev.
 */
export class Checkpointer {
  constructor(
    readonly dir: string,
    readonly every: number,
  ) {}

  get file(): string {
    return join(this.dir, CHECKPOINT_FILE);
  }

  get previousFile(): string {
    return join(this.dir, PREVIOUS_CHECKPOINT_FILE);
  }

  save(config: TrainConfig, model: Model, optimizer: Optimizer, cursor: TrainCursor): void {
    mkdirSync(this.dir, { recursive: true });
    const meta = { kind: 'checkpoint', config: fingerprint(config), ...cursor };
    writeFileAtomic(this.file, encodeModel(model, optimizer.getState(), meta), {
      verify: (written) => {
        try {
          verifyModelFile(written, this.file);
        } catch (e) {
          throw new Error(
            `the checkpoint just written to ${this.file} does not read back intact (${(e as Error).message}); the last one is kept`,
          );
        }
      },
      keepPrevious: this.previousFile,
    });
  }

  /**
   * Loads the checkpoint into model and optimizer and returns the cursor, or undefined when there is none. A damaged
   * checkpoint (its checksum does not match) is a CheckpointError that points at the previous one.
   */
  load(config: TrainConfig, model: Model, optimizer: Optimizer): LoadedCheckpoint | undefined {
    if (!existsSync(this.file)) return undefined;
    let saved;
    try {
      saved = decodeModel(readFileSync(this.file), this.file);
    } catch (e) {
      if (!(e instanceof DamagedModelFileError)) throw e;
      const previous = existsSync(this.previousFile) ? `, e.g. the previous checkpoint: mv ${this.previousFile} ${this.file}` : '';
      throw new CheckpointError(`${e.message}${previous}`);
    }
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
    return { cursor: cursor as TrainCursor, verified: saved.verified };
  }
}
