import { Packr } from 'msgpackr';
import { ConfigError } from './config-error.js';
import { bytesToFloats, floatsToBytes } from './kernels/float-bytes.js';
import { firstNonFinite } from './kernels/vector-ops.js';
import { Model } from './model.js';
import { parseModelSpec } from './model-spec.js';
import { OPTIMIZER_NAMES, type OptimizerState } from './optim/optimizer.js';

export const MODEL_FORMAT = 'gradq-model';
export const MODEL_FORMAT_VERSION = 1;

/** What a saved file holds: the model, optionally its optimizer, and free-form metadata (JSON-like). */
export interface SavedModel {
  model: Model;
  optimizer?: OptimizerState;
  meta: Record<string, unknown>;
}

const packr = new Packr({ useRecords: false, moreTypes: false });

/** Encodes model parameters (+ optimizer state and metadata) with msgpackr; tensors as little-endian bytes. */
export function encodeModel(model: Model, optimizer?: OptimizerState, meta: Record<string, unknown> = {}): Uint8Array {
  return packr.pack({
    format: MODEL_FORMAT,
    version: MODEL_FORMAT_VERSION,
    spec: model.name,
    params: floatsToBytes(model.params),
    optimizer: optimizer && { ...optimizer, buffers: optimizer.buffers.map(floatsToBytes) },
    meta,
  });
}

/** Decodes and validates a saved model; `source` names the file in errors. */
export function decodeModel(bytes: Uint8Array, source: string): SavedModel {
  const fail = (what: string): never => {
    throw new ConfigError(`${source}: ${what}`);
  };
  let doc: unknown;
  try {
    doc = packr.unpack(bytes);
  } catch (e) {
    return fail(`not a gradq model file (${(e as Error).message}); a model is saved by training with an output file`);
  }
  if (!isRecord(doc) || doc.format !== MODEL_FORMAT) return fail('not a gradq model file (no "gradq-model" header)');
  if (doc.version !== MODEL_FORMAT_VERSION) {
    return fail(`format version ${String(doc.version)} is not supported (this gradq reads version ${MODEL_FORMAT_VERSION})`);
  }
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
  return { model, optimizer, meta };
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
