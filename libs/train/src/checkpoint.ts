import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  bytesToFloats,
  DamagedModelFileError,
  decodeModel,
  encodeModel,
  floatsToBytes,
  verifyModelFile,
  type Model,
  type Optimizer,
  type OptimizerState,
} from '@gradq/nn';
import { writeFileAtomic } from '@gradq/cli';
import { CheckpointError } from './checkpoint-error.js';
import type { LocalRoundsState } from './local-round.js';
import { keepsResidual, residualBytes, type ShardResiduals } from './shard-compression.js';
import { syncModeName } from './sync-mode.js';
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
    sync: syncModeName(c.sync ?? { kind: 'sync' }),
    'outer-lr': c.sync?.kind === 'local' ? (c.outer?.lr ?? 1) : null,
    'outer-momentum': c.sync?.kind === 'local' ? (c.outer?.momentum ?? 0) : null,
    compress: c.compress ?? 'none',
  };
}

/** What a setting was in checkpoints written before it existed. */
const BEFORE_IT_EXISTED: Record<string, unknown> = {
  'augment-shift': 0,
  sync: 'sync',
  'outer-lr': null,
  'outer-momentum': null,
  compress: 'none',
};

/** A checkpoint read back: where training stands, and whether the file's checksum was checked (not in version 1). */
export interface LoadedCheckpoint {
  cursor: TrainCursor;
  /** A local SGD run's replica and outer optimizer states (undefined for a sync run). */
  local?: LocalRoundsState;
  /** --compress with error feedback: each shard's stored residual (undefined without). */
  residuals?: ShardResiduals;
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

  save(
    config: TrainConfig,
    model: Model,
    optimizer: Optimizer,
    cursor: TrainCursor,
    local?: LocalRoundsState,
    residuals?: ShardResiduals,
  ): void {
    mkdirSync(this.dir, { recursive: true });
    const meta = {
      kind: 'checkpoint',
      config: fingerprint(config),
      ...cursor,
      ...(local && { local: encodeLocal(local) }),
      ...(residuals && { residuals }),
    };
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
    const local = config.sync?.kind === 'local' ? decodeLocal(meta.local, this.file) : undefined;
    const residuals = keepsResidual(config.compress ?? 'none')
      ? decodeResiduals(meta.residuals, config.shards, model, this.file)
      : undefined;
    return { cursor: cursor as TrainCursor, verified: saved.verified, ...(local && { local }), ...(residuals && { residuals }) };
  }
}

function encodeLocal(s: LocalRoundsState): Record<string, unknown> {
  const replicas = s.replicas.map((r) => ({ name: r.name, t: r.t, buffers: r.buffers.map(floatsToBytes) }));
  return { replicas, outerT: s.outerT, velocity: floatsToBytes(s.velocity) };
}

/** The local SGD state of a checkpoint's metadata, its shape checked (LocalRounds.setState checks it fits the run). */
function decodeLocal(raw: unknown, file: string): LocalRoundsState {
  const bad = (what: string): never => {
    throw new CheckpointError(`${file}: local SGD state ${what}`);
  };
  const floats = (b: unknown, what: string): Float32Array =>
    b instanceof Uint8Array && b.byteLength % 4 === 0 ? bytesToFloats(b) : bad(`${what} is not float32 bytes`);
  if (typeof raw !== 'object' || raw === null) return bad('missing');
  const { replicas, outerT, velocity } = raw as Record<string, unknown>;
  if (!Array.isArray(replicas)) return bad('has no replicas');
  if (typeof outerT !== 'number') return bad('has no outer step count');
  return {
    replicas: replicas.map((r: unknown, k): OptimizerState => {
      if (typeof r !== 'object' || r === null) return bad(`replica ${k} is malformed`);
      const { name, t, buffers } = r as Record<string, unknown>;
      if (typeof name !== 'string' || typeof t !== 'number' || !Array.isArray(buffers)) return bad(`replica ${k} is malformed`);
      const hyper = {} as OptimizerState['hyper']; // the run's own, put in by LocalRounds.setState
      return { name: name as OptimizerState['name'], hyper, t, buffers: buffers.map((b, i) => floats(b, `replica ${k} buffer ${i}`)) };
    }),
    outerT,
    velocity: floats(velocity, 'velocity'),
  };
}

/** The shard residuals of a checkpoint's metadata: one per shard, each null or residualBytes(n) bytes. */
function decodeResiduals(raw: unknown, shards: number, model: Model, file: string): ShardResiduals {
  const size = residualBytes(model.params.length);
  if (!Array.isArray(raw) || raw.length > shards) {
    throw new CheckpointError(`${file}: the --compress residuals are missing or not a list of at most ${shards} shards`);
  }
  return raw.map((r: unknown, k) => {
    if (r === null) return null;
    if (r instanceof Uint8Array && r.byteLength === size) return new Uint8Array(r); // a copy, not a Buffer
    throw new CheckpointError(`${file}: the --compress residual of shard ${k} is not ${size} bytes`);
  });
}
