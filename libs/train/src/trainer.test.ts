import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadDataset, type Dataset } from '@gradq/data';
import { paramsSha256 } from '@gradq/nn';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Checkpointer } from './checkpoint.js';
import type { GradientSource } from './gradient-source.js';
import { LocalGradientSource } from './local-gradient-source.js';
import { RunStoppedError } from './run-stopped-error.js';
import type { TrainConfig } from './train-config.js';
import { runTraining } from './trainer.js';
import { setUpTraining } from './training-setup.js';
import { evaluateSplit } from './evaluate.js';
import type { EpochEvent, StepEvent } from './train-observer.js';

const DATA = fileURLToPath(new URL('../../../../shared/data', import.meta.url));
// 1 epoch of 1024 samples in batches of 64: 16 steps, a checkpoint every 5.
const CONFIG: TrainConfig = {
  dataset: 'mnist', model: 'mlp:784-16-10', init: 'he', epochs: 1, batch: 64, shards: 2, optimizer: 'adam', lr: 0.001,
  schedule: 'cosine', warmup: 0, seed: 3, trainSamples: 1024, augmentShift: 0, checkpointEvery: 5, resume: false,
}; // prettier-ignore
const quiet = { log: () => undefined, progress: { write: () => true } };

let mnist: Dataset;
let tmp: string;
beforeAll(async () => {
  mnist = await loadDataset('mnist', { dataDir: DATA });
  tmp = mkdtempSync(join(tmpdir(), 'gradq-trainer-'));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** The in-process source, stopping the run (RunStoppedError) when asked for step `stopAt`. */
function stoppingAt(stopAt: number, inner: GradientSource): GradientSource {
  return {
    step: (plan, params, sum) =>
      plan.globalStep === stopAt ? Promise.reject(new RunStoppedError('stopped')) : inner.step(plan, params, sum),
    close: () => inner.close(),
  };
}

describe('runTraining', () => {
  it('checkpoints the steps done when the source stops the run, and a resumed run ends as one that was never stopped', async () => {
    const straight = setUpTraining(CONFIG, mnist);
    await runTraining(straight, new LocalGradientSource(straight.model, straight.train, { seed: CONFIG.seed, shift: 0 }), quiet);
    const expected = paramsSha256(straight.model.params);

    const checkpointer = new Checkpointer(join(tmp, 'ckpt'), CONFIG.checkpointEvery);
    const first = setUpTraining(CONFIG, mnist);
    const source = new LocalGradientSource(first.model, first.train, { seed: CONFIG.seed, shift: 0 });
    const error = await runTraining(first, stoppingAt(7, source), quiet, { checkpointer }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RunStoppedError);
    expect((error as RunStoppedError).savedAt).toEqual({ file: checkpointer.file, nextStep: 7 }); // not step 5's checkpoint

    const second = setUpTraining(CONFIG, mnist);
    const cursor = checkpointer.load(CONFIG, second.model, second.optimizer)?.cursor;
    expect(cursor?.nextStep).toBe(7);
    const summary = await runTraining(second, new LocalGradientSource(second.model, second.train, { seed: CONFIG.seed, shift: 0 }), quiet, {
      checkpointer,
      cursor,
    });
    expect(summary.params_sha256).toBe(expected);
    expect(summary.applied_steps).toBe(16);
  });

  it('without a checkpointer, passes the error on with nothing saved', async () => {
    const setup = setUpTraining(CONFIG, mnist);
    const source = new LocalGradientSource(setup.model, setup.train, { seed: CONFIG.seed, shift: 0 });
    const error = await runTraining(setup, stoppingAt(3, source), quiet).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RunStoppedError);
    expect((error as RunStoppedError).savedAt).toBeUndefined();
  });

  it('tells observers every step (loss, accuracy, learning rate) and every epoch with its test evaluation', async () => {
    const config = { ...CONFIG, epochs: 2, schedule: 'cosine' };
    const setup = setUpTraining(config, mnist);
    const steps: StepEvent[] = [];
    const epochs: EpochEvent[] = [];
    const observer = { step: (e: StepEvent) => steps.push({ ...e }), epoch: (e: EpochEvent) => epochs.push({ ...e }) };
    const source = new LocalGradientSource(setup.model, setup.train, { seed: config.seed, shift: 0 });
    const summary = await runTraining(setup, source, quiet, { observers: [observer] });
    expect(steps.map((e) => e.step)).toEqual([...Array(32).keys()]);
    expect(steps.every((e) => e.samples === 64 && e.totalSteps === 32 && e.sourceMs >= 0 && e.optimizerMs >= 0)).toBe(true);
    // The epoch's mean loss and accuracy are the step figures summed; cosine decays the rate step by step.
    const second = steps.filter((e) => e.epoch === 1);
    expect(second.reduce((a, e) => a + e.lossSum, 0) / 1024).toBeCloseTo(summary.train_loss, 10);
    expect(second.reduce((a, e) => a + e.correct, 0) / 1024).toBe(summary.train_accuracy);
    expect(steps[0].lr).toBe(config.lr);
    expect(steps[31].lr).toBeLessThan(steps[30].lr);
    expect(epochs.map((e) => [e.epoch, e.step])).toEqual([[0, 16], [1, 32]]); // prettier-ignore
    const evaluation = evaluateSplit(setup.model, setup.test);
    expect(epochs[1]).toMatchObject({ testLoss: evaluation.loss, testAccuracy: evaluation.accuracy, trainLoss: summary.train_loss });
  });
});
