/**
 * A run stopped before a step, for a reason outside the training (a signal, a cluster left without workers),
 * thrown by a GradientSource's step(). The model and optimizer are as they were after the steps before it: the
 * trainer saves a checkpoint there, when the run has a checkpointer, and says where in `savedAt` before passing
 * the error on, so that no step done is lost.
 */
export class RunStoppedError extends Error {
  override name = 'RunStoppedError';
  /** The checkpoint the trainer wrote, and the step it continues at. */
  savedAt?: { file: string; nextStep: number };
  /** The run's checkpoint file when none could be written now (the shards' residuals unreadable): the last one stands. */
  lastCheckpoint?: string;
}
