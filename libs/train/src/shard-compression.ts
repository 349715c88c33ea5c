import {
  decodeGradientInto,
  encodedGradientBytes,
  encodeGradient,
  encodeWithErrorFeedback,
  keepsResidual,
  type GradientCodec,
} from '@gradq/nn';

export { keepsResidual }; // libs/nn's, for the trainer and the cluster (which codecs keep a residual)

// `--compress`: how a shard's gradient sum travels (issue 13). THE recipe, called by the in-process source and by
// every worker, so that a shard gives the same bits wherever it is computed:
//   none        float32 as it is (today's path; nothing here runs)
//   fp16, bf16  the sum rounded to nearest even, no error feedback (its rounding error is 2^-11 / 2^-8 relative)
//   int8        error feedback (EF-SGD): shard k sends Q(g + e_k) and keeps e_k ← (g + e_k) − D(Q(g + e_k))
// The residual e_k belongs to the logical shard k, never to a worker: it is stored between steps as bf16
// (RESIDUAL_CODEC, 2 bytes a value; rounded the same way in-process and in the cluster), so that a shard
// recomputed by another worker, or after a restart from a checkpoint, reads the same e_k and gives the same bits.
// Why bf16: a float32 residual costs 4 bytes a value to write (and to read) per shard and step, more than the
// 1.004 bytes of the int8 gradient it corrects; bf16 halves that, and its rounding (2^-9 of e_k, itself at most
// half an int8 step) is far below the int8 step.

/** The stored residual of each shard, by shard (RESIDUAL_CODEC bytes; null: the shard has none yet). */
export type ShardResiduals = Array<Uint8Array | null>;

/** How residuals are stored between steps. */
export const RESIDUAL_CODEC: GradientCodec = 'bf16';

/** Bytes of one shard's stored residual for `n` parameters. */
export function residualBytes(n: number): number {
  return encodedGradientBytes(RESIDUAL_CODEC, n);
}

/** Working memory of compressShardGradient, reused from call to call (one per caller). */
export class CompressionScratch {
  residual = new Float32Array(0);
  decoded = new Float32Array(0);

  reserve(n: number): void {
    if (this.residual.length !== n) {
      this.residual = new Float32Array(n);
      this.decoded = new Float32Array(n);
    }
  }
}

/**
 * Encodes one shard's gradient sum `gradient` with `codec` into `out` (encodedGradientBytes(codec, n) bytes). With
 * error feedback (keepsResidual), `residualIn` is the shard's stored residual (residualBytes(n) bytes; null: none
 * yet, zeros) and the new one is written to `residualOut` (residualBytes(n) bytes; it may be `residualIn` itself:
 * that is read in full first). Throws GradientCodecError for a
 * gradient the codec cannot carry (not finite, fp16 overflow).
 */
export function compressShardGradient(
  codec: GradientCodec,
  gradient: Float32Array,
  residualIn: Uint8Array | null,
  out: Uint8Array,
  residualOut: Uint8Array | null,
  scratch: CompressionScratch,
): void {
  if (!keepsResidual(codec)) {
    encodeGradient(codec, gradient, out);
    return;
  }
  if (residualOut === null) throw new Error(`compressShardGradient ${codec}: error feedback needs a residualOut buffer`);
  scratch.reserve(gradient.length);
  const e = scratch.residual;
  if (residualIn === null) e.fill(0);
  else decodeGradientInto(RESIDUAL_CODEC, residualIn, e);
  encodeWithErrorFeedback(codec, gradient, e, out, scratch.decoded);
  encodeGradient(RESIDUAL_CODEC, e, residualOut);
}

/**
 * The figures of `--json`'s bytes_per_step: θ written once and read by each shard's job, gradients sent up. With
 * --sync local:H they are a round's θ and states down, Δ and states up, per global step (roundBytesPerStep).
 */
export interface BytesPerStep {
  /** θ as workers read it: one float32 copy per shard job (in-process: what a cluster of K single-shard jobs would read). */
  params_down: number;
  /** Shard gradient messages' payloads: K × encodedGradientBytes(codec, n). */
  gradients_up: number;
  /** Error-feedback residuals written (and read) per step: K × residualBytes(n), 0 without error feedback. */
  residuals: number;
}

/** Bytes per step of a run with `shards` shards, `n` parameters and codec `codec` (payloads only, no headers). */
export function bytesPerStep(codec: GradientCodec, n: number, shards: number): BytesPerStep {
  return {
    params_down: shards * 4 * n,
    gradients_up: shards * encodedGradientBytes(codec, n),
    residuals: keepsResidual(codec) ? shards * residualBytes(n) : 0,
  };
}
