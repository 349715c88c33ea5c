export type { TrainConfig } from './train-config.js';
export type { GradientSource, StepPlan, StepStats } from './gradient-source.js';
export { shardGradient, ShardInputs, type Augmentation } from './shard-gradient.js';
export { LocalGradientSource } from './local-gradient-source.js';
export { makeReplica, replicaSpec, setUpTraining, type TrainingSetup } from './training-setup.js';
export { makeReplicaFrom, replicaSpecFor, roundSteps, type ReplicaSpec } from './replica-spec.js';
export { checkModelFits, type DataShape } from './model-fit.js';
export { runTraining, type TrainIo, type TrainOptions, type TrainSummary } from './trainer.js';
export { Checkpointer, CHECKPOINT_FILE, PREVIOUS_CHECKPOINT_FILE, type LoadedCheckpoint, type TrainCursor } from './checkpoint.js';
export { CheckpointError } from './checkpoint-error.js';
export { DivergedError } from './diverged-error.js';
export { RunStoppedError } from './run-stopped-error.js';
export { parseScheduleSpec } from './schedule-spec.js';
export { evaluateSplit, type Evaluation, type Mistake } from './evaluate.js';
export type { EpochEvent, StepEvent, TrainObserver } from './train-observer.js';
export { parseSyncMode, syncModeName, type SyncMode } from './sync-mode.js';
export {
  freshReplicaState,
  OuterOptimizer,
  replicaRound,
  roundEnd,
  sumDeltas,
  LocalRounds,
  type LocalRoundsState,
  type OuterSettings,
  type ReplicaResult,
} from './local-round.js';
export {
  bytesPerStep,
  CompressionScratch,
  compressShardGradient,
  keepsResidual,
  residualBytes,
  RESIDUAL_CODEC,
  type BytesPerStep,
  type ShardResiduals,
} from './shard-compression.js';
export { roundBytesPerStep } from './round-bytes.js';
