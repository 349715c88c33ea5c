import { writeFileAtomic, formatCount, ProgressBar, type OutputStream } from '@gradq/cli';
import { encodeModel, firstNonFinite, paramsSha256, verifyModelFile } from '@gradq/nn';
import { epochOrder } from '@gradq/data';
import { roundSteps, stepPlan } from './replica-spec.js';
import { syncModeName } from './sync-mode.js';
import type { Checkpointer, TrainCursor } from './checkpoint.js';
import { DivergedError } from './diverged-error.js';
import { RunStoppedError } from './run-stopped-error.js';
import { evaluateSplit } from './evaluate.js';
import type { GradientSource } from './gradient-source.js';
import { StepTimes } from './step-times.js';
import { LocalRounds, roundEnd, type LocalRoundsState } from './local-round.js';
import type { TrainingSetup } from './training-setup.js';
import { bytesPerStep, keepsResidual, type BytesPerStep, type ShardResiduals } from './shard-compression.js';
import type { StepEvent, TrainObserver } from './train-observer.js';
import { roundBytesPerStep } from './round-bytes.js';

/** The run's figures, printed as the --json line. */
export interface TrainSummary {
  dataset: string;
  model: string;
  optimizer: string;
  lr: number;
  schedule: string;
  seed: number;
  augment_shift: number;
  epochs: number;
  steps: number;
  batch: number;
  shards: number;
  /** --sync: 'sync' or 'local:H'. */
  sync: string;
  /** Local SGD: outer steps applied over the run (rounds, across resumes); absent for sync. */
  outer_steps?: number;
  train_samples: number;
  train_loss: number;
  train_accuracy: number;
  test_loss: number;
  test_accuracy: number;
  train_samples_per_s: number;
  /**
   * The rate of this process's steps after its first one, and how long that first step took: in a cluster run the
   * first step also waits for the workers to start and load the data. null when fewer than two steps ran.
   */
  steady_samples_per_s: number | null;
  first_step_ms: number | null;
  /** Optimizer updates applied over the run (across resumes): equals steps unless something went wrong. */
  applied_steps: number;
  /**
   * Mean milliseconds per step run by this process, after its first (as steady_samples_per_s): computing or
   * gathering gradients, and the optimizer update (with the check of the summed gradient).
   */
  step_ms: Record<string, number>;
  /** Peak resident memory of this process. */
  rss_peak_mb: number;
  params_sha256: string;
  /** How shard gradients travelled (--compress) and the payload bytes of one step (shard-compression.ts). */
  compress: string;
  /** Payload bytes per global step; with --sync local:H a round's bytes divided by its steps (round-bytes.ts). */
  bytes_per_step: BytesPerStep;
  wall_s: number;
  out?: string;
}

export interface TrainIo {
  /** Epoch summary lines (stdout, or stderr under --json). */
  log: (line: string) => void;
  /** Where the progress bar is drawn (stderr). */
  progress: OutputStream;
}

export interface TrainOptions {
  checkpointer?: Checkpointer;
  /** Where to start (from a checkpoint); a fresh run starts at step 0. */
  cursor?: TrainCursor;
  /** Called after each applied step (the cluster uses it for its progress counters). */
  progressText?: () => string;
  /** With `cursor`, for a local SGD run: the replicas' and outer optimizer's states of the checkpoint. */
  local?: LocalRoundsState;
  /** With `cursor`, for a --compress run with error feedback: the shards' residuals of the checkpoint. */
  residuals?: ShardResiduals;
  /** Told about every applied step and every finished epoch (they read, never steer). */
  observers?: readonly TrainObserver[];
}

/**
 * The training loop: for each step, plan the batch and its shards, gather the shard gradients from the
 * source in shard order, and apply the optimizer; checkpoint every M steps, and before a step the source stops
 * the run at (RunStoppedError); evaluate on the test split after each epoch; save at the end.
 */
export async function runTraining(
  setup: TrainingSetup,
  source: GradientSource,
  io: TrainIo,
  options: TrainOptions = {},
): Promise<TrainSummary> {
  const { config, train, test, model, optimizer } = setup;
  const { checkpointer } = options;
  // The step's gradient sum, in WebAssembly memory where the optimizer reads it: adding the shards into it,
  // checking it and the update copy nothing of it.
  const sum = optimizer.gradientSum();
  const n = train.count;
  const start = options.cursor ?? { nextStep: 0, epochLoss: 0, epochCorrect: 0, trainSeconds: 0 };
  let trainSeconds = start.trainSeconds;
  // This process's first step (in a cluster run it also waits for the workers to start) and its later steps.
  const first = new StepTimes();
  const later = new StepTimes();
  let epochLoss = start.epochLoss;
  let epochCorrect = start.epochCorrect;
  let testEval = { loss: Number.NaN, accuracy: Number.NaN };
  const firstEpoch = Math.floor(start.nextStep / setup.stepsPerEpoch);
  const observers = options.observers ?? [];
  // One event object for every step: observers copy what they keep (no allocation per step).
  const event: StepEvent = {
    step: 0,
    epoch: 0,
    totalSteps: setup.totalSteps,
    samples: 0,
    lossSum: 0,
    correct: 0,
    lr: 0,
    sourceMs: 0,
    optimizerMs: 0,
  };

  // Local SGD: the replicas' inner optimizer states and the outer optimizer live here, in the trainer.
  const mode = config.sync ?? { kind: 'sync' };
  const rounds = mode.kind === 'local' ? new LocalRounds(mode.h, config.shards, optimizer, config.outer) : undefined;
  if (rounds && options.cursor) {
    if (!options.local) throw new Error("resuming a local SGD run needs the checkpoint's local SGD state (LoadedCheckpoint.local)");
    rounds.setState(options.local);
  }
  const errorFeedback = keepsResidual(config.compress ?? 'none');
  if (options.residuals) {
    if (!source.restoreResiduals) throw new Error('this gradient source keeps no --compress residuals to resume');
    await source.restoreResiduals(options.residuals, start.nextStep);
  }

  for (let epoch = firstEpoch; epoch < config.epochs; epoch++) {
    // Fetch this epoch's order; every sample appears once, in batches of config.batch (the last may be short).
    const order = epochOrder(config.seed, epoch, n);
    const bar = new ProgressBar(io.progress, `epoch ${epoch + 1}/${config.epochs}`, n);
    const firstStep = epoch === firstEpoch ? start.nextStep - epoch * setup.stepsPerEpoch : 0;
    if (epoch !== firstEpoch) {
      epochLoss = 0;
      epochCorrect = 0;
    }
    let epochSeconds = 0;
    for (let s = firstStep; s < setup.stepsPerEpoch;) {
      const globalStep = epoch * setup.stepsPerEpoch + s;
      // A synchronous step is one global step; a local SGD round covers up to H, never past the epoch's end.
      const end = rounds ? roundEnd(globalStep, rounds.h, setup.stepsPerEpoch) : globalStep + 1;
      // The plan of the step (a synchronous step), or those of the round's global steps (local SGD).
      const steps = rounds ? roundSteps(n, config.batch, config.shards, config.seed, globalStep, end, order) : undefined;
      const plan = steps?.[0] ?? stepPlan(n, config.batch, config.shards, globalStep, order);
      const last = steps?.[steps.length - 1] ?? plan;
      const batchSize = last.batchStart + last.batchSize - plan.batchStart;
      const t0 = performance.now();
      let stats;
      try {
        if (rounds && steps) stats = await rounds.run(source, steps, model.params);
        else {
          // Scatter the shards and gather their gradient sums in shard order.
          sum.fill(0);
          stats = await source.step(plan, model.params, sum);
        }
      } catch (e) {
        // The source stopped the run before this step: keep the steps done.
        if (e instanceof RunStoppedError && checkpointer) {
          // The shards' residuals (--compress int8) may be unreadable now (Redis gone): then no checkpoint, the last stands.
          const residuals = errorFeedback ? await source.residualState?.().catch(() => null) : undefined;
          if (residuals === null) {
            e.lastCheckpoint = checkpointer.file;
            throw e;
          }
          checkpointer.save(
            config,
            model,
            optimizer,
            { nextStep: globalStep, epochLoss, epochCorrect, trainSeconds },
            rounds?.getState(),
            residuals,
          );
          e.savedAt = { file: checkpointer.file, nextStep: globalStep };
        }
        throw e;
      }
      const t1 = performance.now();
      const lr = optimizer.lr;
      if (rounds) {
        // The outer step (in rounds.run, with the round); the main optimizer only counts the global steps.
        optimizer.t = end;
      } else {
        // Average over the batch and step.
        const bad = firstNonFinite(sum);
        if (bad >= 0) throw new DivergedError(plan.globalStep, bad, sum[bad]);
        optimizer.step(model.params, sum, batchSize);
      }
      const t2 = performance.now();
      const dt = (t2 - t0) / 1000;
      (first.steps === 0 ? first : later).add(batchSize, t1 - t0, t2 - t1);
      epochSeconds += dt;
      trainSeconds += dt;
      epochLoss += stats.lossSum;
      epochCorrect += stats.correct;
      if (observers.length > 0) {
        event.step = end - 1; // one event per local SGD round, for its last global step
        event.epoch = epoch;
        event.samples = batchSize;
        event.lossSum = stats.lossSum;
        event.correct = stats.correct;
        event.lr = lr;
        event.sourceMs = t1 - t0;
        event.optimizerMs = t2 - t1;
        for (const o of observers) o.step?.(event);
      }
      // Checkpoint (a round that passes a multiple of the interval is saved at its end).
      if (checkpointer && Math.floor(end / checkpointer.every) > Math.floor(globalStep / checkpointer.every)) {
        // With --compress int8 the shards' residuals go in too; when they cannot be read (Redis gone for the moment),
        // this checkpoint is skipped and the last one stands.
        const residuals = errorFeedback
          ? await source.residualState?.().catch((err: unknown) => {
              io.log(`checkpoint at step ${end} skipped: ${(err as Error).message}`);
              return null;
            })
          : undefined;
        if (residuals !== null) {
          checkpointer.save(
            config,
            model,
            optimizer,
            { nextStep: end, epochLoss, epochCorrect, trainSeconds },
            rounds?.getState(),
            residuals,
          );
        }
      }
      s += end - globalStep;
      // The bar's text only when it is drawn: formatting it every step would cost ~20 µs of a 0.6 ms MLP step.
      const done = plan.batchStart + batchSize;
      if (bar.due(done)) {
        const rate = (done - firstStep * config.batch) / epochSeconds;
        const extra = options.progressText ? `  ${options.progressText()}` : '';
        bar.update(done, `loss ${(epochLoss / done).toFixed(4)} acc ${pct(epochCorrect / done)} ${formatCount(rate)} samples/s${extra}`);
      }
    }
    bar.clear();
    // Evaluate.
    testEval = evaluateSplit(model, test);
    const epochRate = (n - firstStep * config.batch) / epochSeconds;
    for (const o of observers) {
      o.epoch?.({
        epoch, step: (epoch + 1) * setup.stepsPerEpoch, trainLoss: epochLoss / n, trainAccuracy: epochCorrect / n,
        testLoss: testEval.loss, testAccuracy: testEval.accuracy, lr: optimizer.lr, samplesPerS: epochRate,
      }); // prettier-ignore
    }
    io.log(
      `epoch ${epoch + 1}/${config.epochs}  loss ${(epochLoss / n).toFixed(4)}  train acc ${pct(epochCorrect / n)}  ` +
        `test acc ${pct(testEval.accuracy)}  ${formatCount(epochRate)} samples/s  lr ${optimizer.lr.toPrecision(3)}`,
    );
  }

  // Resumed from a checkpoint taken after the last step: nothing ran, but the summary still needs figures.
  if (Number.isNaN(testEval.accuracy)) testEval = evaluateSplit(model, test);
  if (config.out !== undefined) {
    const meta = { dataset: config.dataset, epochs: config.epochs, seed: config.seed, test_accuracy: testEval.accuracy };
    const out = config.out;
    writeFileAtomic(out, encodeModel(model, optimizer.getState(), meta), { verify: (written) => verifyModelFile(written, out) });
    io.log(`saved ${config.out}`);
  }
  return {
    dataset: config.dataset,
    model: model.name,
    optimizer: config.optimizer,
    lr: config.lr,
    schedule: config.schedule,
    seed: config.seed,
    augment_shift: config.augmentShift,
    epochs: config.epochs,
    steps: setup.totalSteps,
    batch: config.batch,
    shards: config.shards,
    sync: syncModeName(mode),
    ...(rounds && { outer_steps: rounds.outerSteps }),
    train_samples: n,
    train_loss: epochLoss / n,
    train_accuracy: epochCorrect / n,
    test_loss: testEval.loss,
    test_accuracy: testEval.accuracy,
    train_samples_per_s: Math.round((n * config.epochs) / trainSeconds),
    steady_samples_per_s: later.steps > 0 ? Math.round(later.samples / (later.ms / 1000)) : null,
    first_step_ms: first.steps > 0 ? first.ms : null,
    applied_steps: optimizer.t,
    step_ms: (later.steps > 0 ? later : first).meanMs(),
    rss_peak_mb: process.resourceUsage().maxRSS / 1024,
    params_sha256: paramsSha256(model.params),
    compress: config.compress ?? 'none',
    bytes_per_step: rounds
      ? roundBytesPerStep(model.params.length, config.shards, rounds.stateBuffers, rounds.h, setup.stepsPerEpoch)
      : bytesPerStep(config.compress ?? 'none', model.params.length, config.shards),
    wall_s: performance.now() / 1000, // since the process started: start-up, data, training, evaluation
    ...(config.out !== undefined && { out: config.out }),
  };
}

function pct(x: number): string {
  return `${(100 * x).toFixed(2)}%`;
}
