/**
 * One applied step, as the trainer reports it to observers. The trainer reuses one object for every step: an
 * observer copies the figures it keeps during the call and must not hold on to the object.
 */
export interface StepEvent {
  /** 0-based over the run. */
  step: number;
  /** 0-based. */
  epoch: number;
  totalSteps: number;
  /** Samples in this step's batch. */
  samples: number;
  /** The batch's summed loss and correct count (divide by samples for the means). */
  lossSum: number;
  correct: number;
  /** The learning rate the optimizer applied in this step. */
  lr: number;
  /** Milliseconds: gathering the shard gradients (the gradient source), then the check and optimizer update. */
  sourceMs: number;
  optimizerMs: number;
}

/** One finished epoch with its evaluation on the test split. */
export interface EpochEvent {
  /** 0-based. */
  epoch: number;
  /** The step after the epoch's last (0-based), for plotting beside the steps. */
  step: number;
  trainLoss: number;
  trainAccuracy: number;
  testLoss: number;
  testAccuracy: number;
  lr: number;
  samplesPerS: number;
}

/**
 * Reads the trainer's progress as it runs (the dashboard, Prometheus metrics, the metrics log). Observers never
 * steer the run: they are called synchronously after a step or epoch and must return quickly.
 */
export interface TrainObserver {
  step?(e: Readonly<StepEvent>): void;
  epoch?(e: Readonly<EpochEvent>): void;
}
