import { createHash } from 'node:crypto';
import { Packr } from 'msgpackr';
import { ConfigError } from './config-error.js';
import { bytesToFloats, floatsToBytes } from './kernels/float-bytes.js';
import { firstNonFinite } from './kernels/vector-ops.js';
import { Model } from './model.js';
import { parseModelSpec } from './model-spec.js';
import { OPTIMIZER_NAMES, type OptimizerState } from './optim/optimizer.js';

export const MODEL_FORMAT = 'gradq-model';
/**
 * The version written. A file is a msgpack map:
 *
 *   version 2: { format: "gradq-model", version: 2, sha256: <32 bytes>, payload: <bytes> }, where payload is the
 *              msgpack map { spec, params, optimizer, meta } and sha256 its SHA-256: every byte of the model,
 *              its optimizer state and its metadata (a checkpoint's counters) is covered.
 *   version 1: { format, version: 1, spec, params, optimizer, meta }, without a checksum. Still read (a saved
 *              model or checkpoint of an older gradq must stay usable), with `verified` false.
 *
 * Tensors are little-endian float32 bytes.
 */
export const MODEL_FORMAT_VERSION = 2;

/** What a saved file holds: the model, optionally its optimizer, and free-form metadata (JSON-like). */
export interface SavedModel {
  model: Model;
  optimizer?: OptimizerState;
  meta: Record<string, unknown>;
  /** Whether the file's checksum was there and right (false for a version 1 file, which has none). */
  verified: boolean;
}

/** A saved model whose checksum does not match its content: damaged since it was written. */
export class DamagedModelFileError extends ConfigError {
  override name = 'DamagedModelFileError';
}

const packr = new Packr({ useRecords: false, moreTypes: false });

/** Encodes model parameters (+ optimizer state and metadata) with msgpackr; tensors as little-endian bytes. */
export function encodeModel(model: Model, optimizer?: OptimizerState, meta: Record<string, unknown> = {}): Uint8Array {
  const payload = packr.pack({
    spec: model.name,
    params: floatsToBytes(model.params),
    optimizer: optimizer && { ...optimizer, buffers: optimizer.buffers.map(floatsToBytes) },
    meta,
  });
  return packr.pack({ format: MODEL_FORMAT, version: MODEL_FORMAT_VERSION, sha256: sha256(payload), payload });
}

/**
 * The model document in `bytes` once its checksum is checked (for a version 2 file; a version 1 file is its own
 * document): a ConfigError naming `source` for anything that is not a model file, a DamagedModelFileError for a
 * checksum that does not match. Checks nothing beyond the checksum: decodeModel does.
 */
export function verifyModelFile(bytes: Uint8Array, source: string): { doc: Record<string, unknown>; verified: boolean } {
  const fail = (what: string): never => {
    throw new ConfigError(`${source}: ${what}`);
  };
  let file: unknown;
  try {
    file = packr.unpack(bytes);
  } catch (e) {
    return fail(`not a gradq model file, or a damaged one (${(e as Error).message}); a model is saved by training with an output file`);
  }
  if (!isRecord(file) || file.format !== MODEL_FORMAT) return fail('not a gradq model file (no "gradq-model" header)');
  if (file.version === 1) return { doc: file, verified: false };
  if (file.version !== MODEL_FORMAT_VERSION) {
    return fail(`format version ${String(file.version)} is not supported (this gradq reads versions 1 and ${MODEL_FORMAT_VERSION})`);
  }
  const { payload, sha256: recorded } = file;
  if (!(payload instanceof Uint8Array) || !(recorded instanceof Uint8Array) || recorded.byteLength !== 32) {
    return fail('damaged: its payload or checksum is missing');
  }
  const actual = sha256(payload);
  if (!actual.equals(recorded)) {
    const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex').slice(0, 16);
    throw new DamagedModelFileError(
      `${source}: damaged: the SHA-256 of its content is ${hex(actual)}…, the file records ${hex(recorded)}… ` +
        '(changed or cut short since it was written); use a good copy',
    );
  }
  let doc: unknown;
  try {
    doc = packr.unpack(payload);
  } catch (e) {
    return fail(`payload is not msgpack (${(e as Error).message})`);
  }
  if (!isRecord(doc)) return fail('payload is not a map');
  return { doc, verified: true };
}

/** Decodes and validates a saved model (its checksum first); `source` names the file in errors. */
export function decodeModel(bytes: Uint8Array, source: string): SavedModel {
  const fail = (what: string): never => {
    throw new ConfigError(`${source}: ${what}`);
  };
  const { doc, verified } = verifyModelFile(bytes, source);
  if (typeof doc.spec !== 'string') return fail('model spec missing');
  let model: Model;
  try {
    const spec = parseModelSpec(doc.spec);
    // Check the size before allocating: a damaged spec must not make us allocate gigabytes.
    const count = Model.parameterCount(spec);
    if (!(doc.params instanceof Uint8Array)) return fail('parameters missing');
    if (doc.params.byteLength !== count * 4)
      return fail(`parameters: ${doc.params.byteLength} bytes, expected ${count * 4} (${count} float32)`);
    model = new Model(spec);
  } catch (e) {
    return fail((e as Error).message);
  }
  const params = floatsFrom(doc.params, model.params.length, 'parameters', fail);
  model.params.set(params);
  let optimizer: OptimizerState | undefined;
  if (doc.optimizer !== undefined && doc.optimizer !== null) {
    const o = doc.optimizer;
    if (!isRecord(o) || !OPTIMIZER_NAMES.includes(o.name as never) || !isRecord(o.hyper)) return fail('optimizer state malformed');
    if (!Number.isInteger(o.t) || (o.t as number) < 0) return fail(`optimizer step ${String(o.t)} is not a whole number >= 0`);
    if (!Array.isArray(o.buffers)) return fail('optimizer buffers missing');
    optimizer = {
      name: o.name as OptimizerState['name'],
      hyper: o.hyper as OptimizerState['hyper'],
      t: o.t as number,
      buffers: o.buffers.map((b, i) => floatsFrom(b, model.params.length, `optimizer buffer ${i}`, fail)),
    };
  }
  const meta = isRecord(doc.meta) ? doc.meta : {};
  return { model, optimizer, meta, verified };
}

function sha256(bytes: Uint8Array): Buffer {
  return createHash('sha256').update(bytes).digest();
}

function floatsFrom(raw: unknown, count: number, what: string, fail: (what: string) => never): Float32Array {
  if (!(raw instanceof Uint8Array)) return fail(`${what} missing`);
  if (raw.byteLength !== count * 4) return fail(`${what}: ${raw.byteLength} bytes, expected ${count * 4} (${count} float32)`);
  const values = bytesToFloats(raw);
  const bad = firstNonFinite(values);
  if (bad >= 0) return fail(`${what}: value ${values[bad]} at index ${bad} is not finite`);
  return values;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
