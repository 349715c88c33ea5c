import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeOptimizer, makeSchedule, Model, paramsSha256, type Optimizer } from '@gradq/nn';
import { afterAll, describe, expect, it } from 'vitest';
import { Checkpointer, PREVIOUS_CHECKPOINT_FILE, type TrainCursor } from './checkpoint.js';
import { CheckpointError } from './checkpoint-error.js';
import type { TrainConfig } from './train-config.js';

const tmp = mkdtempSync(join(tmpdir(), 'gradq-ckpt-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const config: TrainConfig = {
  dataset: 'mnist', model: 'mlp:4-3-2', init: 'he', epochs: 1, batch: 8, shards: 2, optimizer: 'adam', lr: 0.01,
  schedule: 'constant', warmup: 0, seed: 1, trainSamples: 64, augmentShift: 0, checkpointEvery: 1, resume: true,
}; // prettier-ignore

/** A model and Adam after `steps` steps on fixed gradients, and the cursor that goes with them. */
function trained(steps: number): { model: Model; optimizer: Optimizer; cursor: TrainCursor } {
  const model = new Model(config.model, { seed: 3 });
  const optimizer = makeOptimizer('adam', model.params.length, makeSchedule(config.lr, { kind: 'constant' }), {});
  const grads = Float32Array.from({ length: model.params.length }, (_, i) => Math.sin(i + 1));
  for (let s = 0; s < steps; s++) optimizer.step(model.params, grads, 8);
  return { model, optimizer, cursor: { nextStep: steps, epochLoss: 10.5 * steps, epochCorrect: 5 * steps + 1, trainSeconds: 0.25 } };
}

/** Loads `dir`'s checkpoint into a fresh model and optimizer. */
function load(dir: string) {
  const { model, optimizer } = trained(0);
  const loaded = new Checkpointer(dir, 1).load(config, model, optimizer);
  return { loaded, model, optimizer };
}

/** The message of the CheckpointError that `fn` throws. */
function refusal(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(CheckpointError);
    return (e as Error).message;
  }
  throw new Error('expected a CheckpointError, nothing was thrown');
}

/** `file` with the byte `offset` bytes after the first occurrence of `region` flipped. */
function flip(file: string, region: Uint8Array, offset: number): void {
  const bytes = readFileSync(file);
  const at = bytes.indexOf(region);
  expect(at, 'region found').toBeGreaterThan(0);
  bytes[at + offset] ^= 0x04;
  writeFileSync(file, bytes);
}
const floats = (a: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

describe('Checkpointer', () => {
  it('keeps the --compress int8 residuals of each shard and refuses damaged ones', () => {
    const dir = join(tmp, 'residuals');
    const int8: TrainConfig = { ...config, compress: 'int8' };
    const { model, optimizer, cursor } = trained(3);
    const residual = Uint8Array.from({ length: 2 * model.params.length }, (_, i) => i % 251);
    new Checkpointer(dir, 1).save(int8, model, optimizer, cursor, undefined, [null, residual]);
    const fresh = trained(0);
    const back = new Checkpointer(dir, 1).load(int8, fresh.model, fresh.optimizer);
    expect(back?.residuals).toEqual([null, residual]);
    expect(
      refusal(() => load(dir)),
      'the codec is in the fingerprint',
    ).toMatch(/made with compress int8, this run has compress none/);
    new Checkpointer(dir, 1).save(int8, model, optimizer, cursor, undefined, [residual.subarray(1)]);
    expect(refusal(() => new Checkpointer(dir, 1).load(int8, fresh.model, fresh.optimizer))).toMatch(
      new RegExp(`residual of shard 0 is not ${residual.length} bytes`),
    );
  });

  it('resumes exactly where it saved: parameters, optimizer state and cursor, checked', () => {
    const dir = join(tmp, 'exact');
    const { model, optimizer, cursor } = trained(3);
    new Checkpointer(dir, 1).save(config, model, optimizer, cursor);
    const back = load(dir);
    expect(back.loaded).toEqual({ cursor, verified: true });
    expect(paramsSha256(back.model.params)).toBe(paramsSha256(model.params));
    expect(back.optimizer.getState().buffers.map((b) => paramsSha256(b))).toEqual(optimizer.getState().buffers.map((b) => paramsSha256(b)));
  });

  it('keeps the checkpoint it replaces as checkpoint.gradq.prev', () => {
    const dir = join(tmp, 'prev');
    const checkpointer = new Checkpointer(dir, 1);
    for (const steps of [1, 2, 3]) {
      const { model, optimizer, cursor } = trained(steps);
      checkpointer.save(config, model, optimizer, cursor);
    }
    expect(checkpointer.previousFile).toBe(join(dir, PREVIOUS_CHECKPOINT_FILE));
    expect(load(dir).loaded?.cursor.nextStep).toBe(3);
    rmSync(checkpointer.file);
    writeFileSync(checkpointer.file, readFileSync(checkpointer.previousFile));
    expect(load(dir).loaded?.cursor.nextStep).toBe(2);
  });

  const state = trained(4);
  it.each([
    ['a parameter', floats(state.model.params), 4 * 5 + 1],
    ['the first moment of Adam', floats(state.optimizer.getState().buffers[0]), 4 * 7],
    ['the second moment of Adam', floats(state.optimizer.getState().buffers[1]), 4 * 2 + 3],
    ['the correct count (train_accuracy)', Buffer.from('epochCorrect'), 'epochCorrect'.length], // the value: 21, a positive fixint
    ['the loss of the epoch', Buffer.from('epochLoss'), 'epochLoss'.length + 3],
  ])('refuses to resume from a checkpoint with a flipped bit in %s, pointing at the previous one', (_what, region, offset) => {
    const dir = join(tmp, `flip-${Math.random()}`);
    const checkpointer = new Checkpointer(dir, 1);
    const before = trained(3);
    checkpointer.save(config, before.model, before.optimizer, before.cursor);
    checkpointer.save(config, state.model, state.optimizer, state.cursor);
    flip(checkpointer.file, region, offset);
    const { model, optimizer } = trained(0);
    const untouched = paramsSha256(model.params);
    const message = refusal(() => checkpointer.load(config, model, optimizer));
    expect(message).toMatch(new RegExp(`^${checkpointer.file}: damaged: the SHA-256 of its content is [0-9a-f]{16}…, the file records`));
    expect(message).toContain(`e.g. the previous checkpoint: mv ${checkpointer.previousFile} ${checkpointer.file}`);
    expect(paramsSha256(model.params)).toBe(untouched);
    expect(optimizer.t).toBe(0);
  });

  it('refuses a damaged checkpoint without a previous one, without the hint', () => {
    const dir = join(tmp, 'lone');
    const checkpointer = new Checkpointer(dir, 1);
    checkpointer.save(config, state.model, state.optimizer, state.cursor);
    expect(existsSync(checkpointer.previousFile)).toBe(false);
    flip(checkpointer.file, floats(state.model.params), 9);
    expect(refusal(() => load(dir))).toMatch(/damaged: .*; use a good copy$/);
  });
});
