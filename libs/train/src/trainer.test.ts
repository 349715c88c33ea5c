import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { epochOrder, loadDataset, planStep, type Dataset } from '@gradq/data';
import { paramsSha256 } from '@gradq/nn';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Checkpointer } from './checkpoint.js';
import type { GradientSource, StepPlan } from './gradient-source.js';
import { freshReplicaState, OuterOptimizer, replicaRound, sumDeltas } from './local-round.js';
import { ShardInputs } from './shard-gradient.js';
import { LocalGradientSource } from './local-gradient-source.js';
import { RunStoppedError } from './run-stopped-error.js';
import type { TrainConfig } from './train-config.js';
import { runTraining } from './trainer.js';
import { makeReplica, setUpTraining } from './training-setup.js';
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

  describe('--sync local:H', () => {
    // 16 steps per epoch, rounds of 5: [0, 5), [5, 10), [10, 15), [15, 16) in each epoch (never across its end).
    const LOCAL: TrainConfig = { ...CONFIG, epochs: 2, shards: 3, sync: { kind: 'local', h: 5 }, outer: { lr: 0.7, momentum: 0.9 } };

    /** The same run written as a plain loop over rounds: replicaRound per shard, states carried (or not), the outer step. */
    function reference(carryStates: boolean): string {
      const setup = setUpTraining(LOCAL, mnist);
      const { model, optimizer } = makeReplica(setup);
      const theta = setup.model.params;
      const outer = new OuterOptimizer(theta.length, LOCAL.outer!);
      const sum = new Float32Array(theta.length);
      const inputs = new ShardInputs();
      let states = [0, 1, 2].map(() => freshReplicaState(optimizer));
      for (let epoch = 0; epoch < 2; epoch++) {
        const order = epochOrder(LOCAL.seed, epoch, 1024);
        for (const [first, end] of [
          [0, 5],
          [5, 10],
          [10, 15],
          [15, 16],
        ]) {
          // prettier-ignore
          const steps: StepPlan[] = [];
          for (let s = first; s < end; s++) steps.push({ ...planStep(1024, 64, 3, epoch * 16 + s), globalStep: epoch * 16 + s, order });
          const results = states.map((st, k) =>
            replicaRound(model, optimizer, setup.train, steps, k, theta, st, inputs, { seed: LOCAL.seed, shift: 0 }),
          );
          const { replicas } = sumDeltas(results, sum);
          outer.step(theta, sum, replicas);
          states = carryStates ? results.map((r) => r.state) : states.map(() => freshReplicaState(optimizer));
        }
      }
      return paramsSha256(theta);
    }

    it("gives the bits of a plain loop over rounds that carries the replicas' inner states (and not those of one that does not)", async () => {
      const setup = setUpTraining(LOCAL, mnist);
      const events: StepEvent[] = [];
      const source = new LocalGradientSource(setup.model, setup.train, { seed: LOCAL.seed, shift: 0 }, makeReplica(setup));
      const summary = await runTraining(setup, source, quiet, { observers: [{ step: (e) => events.push({ ...e }) }] });
      expect(summary.params_sha256).toBe(reference(true));
      expect(summary.params_sha256).not.toBe(reference(false));
      expect(summary.applied_steps).toBe(32);
      // One event per round, for its last global step, with the round's samples.
      expect(events.map((e) => [e.step, e.samples])).toEqual([[4, 320], [9, 320], [14, 320], [15, 64], [20, 320], [25, 320], [30, 320], [31, 64]]); // prettier-ignore
    });

    it('a run stopped at a round and resumed from its checkpoint ends as one never stopped (replica and outer states saved)', async () => {
      const make = (setup: ReturnType<typeof setUpTraining>) =>
        new LocalGradientSource(setup.model, setup.train, { seed: LOCAL.seed, shift: 0 }, makeReplica(setup));
      const straight = setUpTraining(LOCAL, mnist);
      const expected = (await runTraining(straight, make(straight), quiet)).params_sha256;

      const checkpointer = new Checkpointer(join(tmp, 'ckpt-local'), 6); // saved at the end of the round that passes step 6
      const first = setUpTraining(LOCAL, mnist);
      const inner = make(first);
      const stopping: GradientSource = {
        step: (p, q, r) => inner.step(p, q, r),
        round: (steps, theta, states) =>
          steps[0].globalStep === 21 ? Promise.reject(new RunStoppedError('stopped')) : inner.round(steps, theta, states),
        close: () => inner.close(),
      };
      const error = await runTraining(first, stopping, quiet, { checkpointer }).catch((e: unknown) => e);
      expect(error, String(error)).toBeInstanceOf(RunStoppedError);
      expect((error as RunStoppedError).savedAt).toEqual({ file: checkpointer.file, nextStep: 21 });

      const second = setUpTraining(LOCAL, mnist);
      const loaded = checkpointer.load(LOCAL, second.model, second.optimizer);
      expect(loaded?.local?.replicas).toHaveLength(3);
      const summary = await runTraining(second, make(second), quiet, { checkpointer, cursor: loaded?.cursor, local: loaded?.local });
      expect(summary.params_sha256).toBe(expected);
      // Without the saved replica states the resumed run would differ: a fresh start of the same rounds does.
      const third = setUpTraining(LOCAL, mnist);
      const again = checkpointer.load(LOCAL, third.model, third.optimizer);
      const fresh = {
        ...again!.local!,
        replicas: again!.local!.replicas.map((r) => ({ ...r, t: 0, buffers: r.buffers.map((b) => b.fill(0)) })),
      };
      const other = await runTraining(third, make(third), quiet, { cursor: again?.cursor, local: fresh });
      expect(other.params_sha256).not.toBe(expected);
      // A sync run refuses the local run's checkpoint.
      const sync = setUpTraining(CONFIG, mnist);
      expect(() => checkpointer.load({ ...CONFIG, epochs: 2, shards: 3 }, sync.model, sync.optimizer)).toThrow(
        /made with sync local:5, this run has sync sync/,
      );
    });

    it('refuses a source that runs only synchronous steps', async () => {
      const setup = setUpTraining(LOCAL, mnist);
      const inner = new LocalGradientSource(setup.model, setup.train, { seed: LOCAL.seed, shift: 0 });
      const syncOnly: GradientSource = { step: (p, q, r) => inner.step(p, q, r), close: () => inner.close() };
      await expect(runTraining(setup, syncOnly, quiet)).rejects.toThrow(/synchronous steps only/);
    });
  });
});
