import { bytesIntoFloats, firstNonFinite, floatsIntoBytes } from '@gradq/nn';
import { Packr } from 'msgpackr';
import { InvalidMessageError } from './invalid-message-error.js';
import type { ShardFailure, ShardResult } from './shard-job.js';
import type { RoundResult } from './round-job.js';
import type { LeaseRelease } from './lease-job.js';
import { SIGNATURE_BYTES, type MessageSigner } from './signing.js';

/**
 * A worker's answer to one shard job, as it travels through the run's results list (one RPUSH, one BLPOP):
 *
 *   bytes 0..3     "GQR2": magic and wire version
 *   bytes 4..7     H, the header's length (uint32, little-endian)
 *   bytes 8..8+H   the header: msgpack of a ShardResult, or of a ShardFailure (it has `error`), or of a LeaseRelease
 *   then 0-3 zero bytes up to a multiple of 4, then the shard's gradient sum as little-endian float32, or as
 *   the header's codec encodes it (--compress; compressed-gradient.ts) (nothing after the header of a failure)
 *
 * The gradient is raw bytes, never JSON, and the header says which (run, step, shard, attempt) it answers, so
 * that the coordinator can check every message against the job it is waiting for before using it.
 *
 * A run with a shared secret signs its messages: they start with "GQS2" instead, and end with 32 more bytes, the
 * HMAC-SHA256 (MessageSigner, kind 'result') of everything before them. Their signature is checked before
 * anything else of them is read.
 */
const MAGIC = 0x32525147; // "GQR2" read as a little-endian uint32
const SIGNED_MAGIC = 0x32535147; // "GQS2"
const FIXED = 8;
const packr = new Packr({ useRecords: false });

// Plain arithmetic, not `& ~3`: a length near 2^32 read from a bad message must not wrap to a small number.
const headerEnd = (headerLength: number): number => Math.ceil((FIXED + headerLength) / 4) * 4;

/**
 * Writes result messages into one buffer that it reuses: each message is valid until the next call, so the
 * caller must have sent it (awaited the Redis reply: a command still being written refers to the buffer) before
 * writing another. The buffer stops growing once it fits the model.
 */
export class ResultWriter {
  private buffer = new Uint8Array(0);

  /** With `signer`, every message is signed. */
  constructor(private readonly signer?: MessageSigner) {}

  /** `gradient`: float32 values, or bytes already encoded (a compressed gradient), copied as they are. */
  write(header: ShardResult | RoundResult | ShardFailure | LeaseRelease, gradient?: Float32Array | Uint8Array): Buffer {
    const packed = packr.pack(header);
    const start = headerEnd(packed.byteLength);
    const size = start + (gradient?.byteLength ?? 0);
    const total = size + (this.signer ? SIGNATURE_BYTES : 0);
    if (this.buffer.byteLength < total) this.buffer = new Uint8Array(total + (total >>> 3)); // offset 0: 4-byte aligned
    const out = this.buffer;
    new DataView(out.buffer).setUint32(0, this.signer ? SIGNED_MAGIC : MAGIC, true);
    new DataView(out.buffer).setUint32(4, packed.byteLength, true);
    out.set(packed, FIXED);
    out.fill(0, FIXED + packed.byteLength, start);
    if (gradient instanceof Float32Array) floatsIntoBytes(gradient, out.subarray(start, size));
    else if (gradient) out.set(gradient, start);
    if (this.signer) out.set(this.signer.sign('result', [out.subarray(0, size)]), size);
    return Buffer.from(out.buffer, 0, total);
  }
}

/** One result message in a buffer of its own (for tests and tools; workers use a ResultWriter). */
export function encodeResultMessage(
  header: ShardResult | RoundResult | ShardFailure | LeaseRelease,
  gradient?: Float32Array | Uint8Array,
  signer?: MessageSigner,
): Buffer {
  return Buffer.from(new ResultWriter(signer).write(header, gradient));
}

/** A result message split into its header (not yet validated) and the gradient's bytes (a view, maybe unaligned). */
export interface ResultMessage {
  header: Record<string, unknown>;
  gradient: Uint8Array;
}

/**
 * Splits a message read from the results list; anything that is not one is an InvalidMessageError. A header
 * longer than `maxHeader` bytes is refused before it is parsed. With `signer` (the run's secret) only messages
 * it signed are read, without one only unsigned messages.
 */
export function readResultMessage(signed: Uint8Array, maxHeader = 64 * 1024, signer?: MessageSigner): ResultMessage {
  const bytes = signer ? verified(signed, signer) : signed;
  if (bytes.byteLength < FIXED) throw new InvalidMessageError(`result message of ${bytes.byteLength} bytes is too short`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const magic = view.getUint32(0, true);
  if (magic === SIGNED_MAGIC && !signer) {
    throw new InvalidMessageError('result message is signed, but this run has no secret (give the coordinator the workers’ secret)');
  }
  if (magic !== MAGIC && !(magic === SIGNED_MAGIC && signer)) {
    throw new InvalidMessageError(
      `result message starts with 0x${magic.toString(16).padStart(8, '0')}, not "GQR2" (a worker of another gradq version?)`,
    );
  }
  const length = view.getUint32(4, true);
  if (length > maxHeader) throw new InvalidMessageError(`result message: header of ${length} bytes (at most ${maxHeader})`);
  const start = headerEnd(length);
  if (start > bytes.byteLength) {
    throw new InvalidMessageError(`result message: header of ${length} bytes does not fit in ${bytes.byteLength} bytes`);
  }
  let header: unknown;
  try {
    header = packr.unpack(bytes.subarray(FIXED, FIXED + length));
  } catch (e) {
    throw new InvalidMessageError(`result message: header is not msgpack (${(e as Error).message})`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) {
    throw new InvalidMessageError(`result message: header is ${JSON.stringify(header)?.slice(0, 80)}, not a map`);
  }
  if (bytes.subarray(FIXED + length, start).some((b) => b !== 0)) throw new InvalidMessageError('result message: padding is not zero');
  return { header: header as Record<string, unknown>, gradient: bytes.subarray(start) };
}

/** A signed message without its signature, once the signature is checked; InvalidMessageError otherwise. */
function verified(bytes: Uint8Array, signer: MessageSigner): Uint8Array {
  const magic = bytes.byteLength >= 4 ? new DataView(bytes.buffer, bytes.byteOffset, 4).getUint32(0, true) : undefined;
  if (magic === MAGIC) throw new InvalidMessageError('result message is not signed (from a worker without the run’s secret, or forged)');
  if (magic !== SIGNED_MAGIC || bytes.byteLength < FIXED + SIGNATURE_BYTES) {
    throw new InvalidMessageError(`result message of ${bytes.byteLength} bytes is not a signed result message`);
  }
  const end = bytes.byteLength - SIGNATURE_BYTES;
  const body = bytes.subarray(0, end);
  if (!signer.verify('result', bytes.subarray(end), [body])) {
    throw new InvalidMessageError('result message has a bad signature (made with another secret, or changed since)');
  }
  return body;
}

/**
 * Copies a message's gradient bytes into `into` after checking that they are exactly into.length values, then
 * checks every value is finite. When it throws, `into` may hold part of the rejected gradient: it is the
 * caller's scratch, never the model.
 */
export function readGradientInto(gradient: Uint8Array, into: Float32Array, what: string): void {
  if (gradient.byteLength !== into.byteLength) {
    const got = gradient.byteLength % 4 === 0 ? `${gradient.byteLength / 4} values` : `${gradient.byteLength} bytes`;
    throw new InvalidMessageError(`${what}: gradient of ${got}, expected ${into.length} values`);
  }
  bytesIntoFloats(gradient, into);
  const bad = firstNonFinite(into);
  if (bad >= 0) throw new InvalidMessageError(`${what}: gradient value ${bad} is ${into[bad]}`);
}
