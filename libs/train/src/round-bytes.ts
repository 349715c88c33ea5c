import type { BytesPerStep } from './shard-compression.js';

/**
 * bytes_per_step of a local SGD run (--sync local:H): what its rounds move, per global step (a round's bytes / its
 * steps, over the whole run), counted as for K jobs of one replica each: every replica reads θ and its inner
 * optimizer state (`stateBuffers` buffers of θ's size) and sends back Δ_k and its new state, (1 + stateBuffers) × 4n
 * bytes each way per replica, whether the replica took a step or not. (A job of several replicas reads θ once: the
 * cluster then moves up to (K − jobs) × 4n bytes fewer down a round than this says.) An epoch has ⌈stepsPerEpoch / h⌉ rounds (its last may be
 * shorter than h). Local SGD deltas travel as float32 and keep no residual. (Round leases, the cluster's default,
 * move the states down once a lease set instead of once a round: the states' share of params_down is then an upper
 * bound.)
 */
export function roundBytesPerStep(n: number, shards: number, stateBuffers: number, h: number, stepsPerEpoch: number): BytesPerStep {
  const perRound = shards * (1 + stateBuffers) * 4 * n;
  const perStep = (perRound * Math.ceil(stepsPerEpoch / h)) / stepsPerEpoch;
  return { params_down: perStep, gradients_up: perStep, residuals: 0 };
}
