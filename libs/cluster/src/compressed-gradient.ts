import { decodeGradientInto, GRADIENT_CODECS, GradientCodecError, type GradientCodec } from '@gradq/nn';
import { InvalidMessageError } from './invalid-message-error.js';
import { readGradientInto } from './result-message.js';

// How a result message's gradient is read when the run compresses gradients (issue 13, `--compress`): the
// header's codec tag is checked against the run's, then the bytes are decoded with libs/nn's codecs, whose
// checks (length, finite scales ≥ 0, no ∞/NaN half, no int8 code −128) become InvalidMessageErrors, so that the
// coordinator rejects and counts such a message (results_rejected) as it does any bad gradient.

/** A codec tag read from outside (a result header, a checkpoint): one of GRADIENT_CODECS, or InvalidMessageError. */
export function checkGradientCodec(tag: unknown, what: string): GradientCodec {
  if (typeof tag === 'string' && (GRADIENT_CODECS as readonly string[]).includes(tag)) return tag as GradientCodec;
  throw new InvalidMessageError(
    `${what}: gradient codec ${JSON.stringify(tag)?.slice(0, 40)}, expected one of ${GRADIENT_CODECS.join(', ')}`,
  );
}

/**
 * Decodes a message's gradient bytes, tagged `tag`, into `into` for a run whose codec is `expected`. 'none' is
 * today's float32 path (readGradientInto). When it throws, `into` may hold part of the rejected gradient.
 */
export function readCompressedGradientInto(
  tag: unknown,
  expected: GradientCodec,
  gradient: Uint8Array,
  into: Float32Array,
  what: string,
): void {
  const codec = checkGradientCodec(tag, what);
  if (codec !== expected) throw new InvalidMessageError(`${what}: gradient encoded as ${codec}, this run compresses with ${expected}`);
  if (codec === 'none') return readGradientInto(gradient, into, what);
  try {
    decodeGradientInto(codec, gradient, into);
  } catch (e) {
    if (e instanceof GradientCodecError) throw new InvalidMessageError(`${what}: ${e.message}`);
    throw e;
  }
}
