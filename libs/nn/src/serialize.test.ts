import { createHash } from 'node:crypto';
import { Packr } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { ConfigError } from './config-error.js';
import { Model } from './model.js';
import { Adam } from './optim/adam.js';
import { makeSchedule } from './optim/schedule.js';
import { paramsSha256 } from './params-hash.js';
import { Rng } from './rng.js';
import { DamagedModelFileError, decodeModel, encodeModel } from './serialize.js';
import { configErrorOf, randomFloats } from './testing/numeric.js';

const packr = new Packr({ useRecords: false, moreTypes: false });

/** The bits of a float array, so that comparisons are exact (NaN-safe, -0 distinct from 0). */
const bits = (a: Float32Array) => Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length));

/** A trained-looking model and Adam state (two steps on random gradients). */
function trainedSetup() {
  const model = new Model('mlp:7-5-4-3', { seed: 9 });
  const adam = new Adam(model.params.length, makeSchedule(0.01, { kind: 'constant' }));
  const rng = new Rng(10);
  for (let s = 0; s < 2; s++) adam.step(model.params, randomFloats(rng, model.params.length), 4);
  return { model, adam };
}

/** The outer map of an encoded file (format, version, sha256, payload). */
const fileMap = (bytes: Uint8Array) => packr.unpack(bytes) as Record<string, unknown>;

/** The encoded payload as a plain object, to be altered and packed again. */
function encodedPayload(): Record<string, unknown> {
  const { model, adam } = trainedSetup();
  return packr.unpack(fileMap(encodeModel(model, adam.getState(), { epoch: 2 })).payload as Uint8Array) as Record<string, unknown>;
}

/** A version 2 file holding `payload`, with the SHA-256 computed here. */
function fileWith(payload: Record<string, unknown>, outer: Record<string, unknown> = {}): Uint8Array {
  const bytes = packr.pack(payload);
  const sha256 = createHash('sha256').update(bytes).digest();
  return packr.pack({ format: 'gradq-model', version: 2, sha256, payload: bytes, ...outer });
}

describe('encodeModel / decodeModel', () => {
  it('round-trips params, Adam state and meta bit for bit', () => {
    const { model, adam } = trainedSetup();
    const state = adam.getState();
    const meta = { epoch: 3, note: 'best', accuracy: 0.9731, shards: [1, 2] };
    const saved = decodeModel(encodeModel(model, state, meta), 'model.gq');
    expect(saved.model.name).toBe('mlp:7-5-4-3');
    expect(bits(saved.model.params)).toEqual(bits(model.params));
    expect(paramsSha256(saved.model.params)).toBe(paramsSha256(model.params));
    expect(saved.optimizer?.name).toBe('adam');
    expect(saved.optimizer?.t).toBe(2);
    expect(saved.optimizer?.hyper).toEqual(state.hyper);
    expect(saved.optimizer?.buffers.map(bits)).toEqual(state.buffers.map(bits));
    expect(saved.meta).toEqual(meta);
    expect(saved.verified).toBe(true);
  });

  it('writes version 2: the format, the version, the SHA-256 of the payload and the payload (spec, params, optimizer, meta)', () => {
    const { model, adam } = trainedSetup();
    const file = fileMap(encodeModel(model, adam.getState(), { epoch: 3 }));
    expect(Object.keys(file)).toEqual(['format', 'version', 'sha256', 'payload']);
    expect([file.format, file.version]).toEqual(['gradq-model', 2]);
    const payload = file.payload as Uint8Array;
    expect(Buffer.from(file.sha256 as Uint8Array).toString('hex')).toBe(createHash('sha256').update(payload).digest('hex'));
    const doc = packr.unpack(payload) as Record<string, unknown>;
    expect(Object.keys(doc)).toEqual(['spec', 'params', 'optimizer', 'meta']);
    expect(Buffer.from(doc.params as Uint8Array).equals(Buffer.from(model.params.buffer))).toBe(true);
  });

  it('reads version 1 files (no checksum) as before, marked unverified', () => {
    const { model, adam } = trainedSetup();
    const state = adam.getState();
    const v1 = packr.pack({
      format: 'gradq-model', version: 1, spec: model.name, params: Buffer.from(model.params.buffer),
      optimizer: { ...state, buffers: state.buffers.map((b) => Buffer.from(b.buffer, b.byteOffset, b.byteLength)) }, meta: { epoch: 1 },
    }); // prettier-ignore
    const saved = decodeModel(v1, 'old.gradq');
    expect(saved.verified).toBe(false);
    expect(bits(saved.model.params)).toEqual(bits(model.params));
    expect(saved.optimizer?.buffers.map(bits)).toEqual(state.buffers.map(bits));
    expect(saved.meta).toEqual({ epoch: 1 });
  });

  it('decodes from a plain Uint8Array copy as well as from the Buffer encodeModel returns', () => {
    const { model } = trainedSetup();
    const bytes = new Uint8Array(encodeModel(model));
    expect(bits(decodeModel(bytes, 'copy.gq').model.params)).toEqual(bits(model.params));
  });

  it('keeps an encoding intact after later encodings (no shared output buffer)', () => {
    const a = new Model('mlp:4-3-2', { seed: 1 });
    const bytes = encodeModel(a);
    for (let seed = 2; seed < 5; seed++) encodeModel(new Model('mlp:4-3-2', { seed }));
    expect(bits(decodeModel(bytes, 'a.gq').model.params)).toEqual(bits(a.params));
  });

  it('restores an Adam that continues exactly like the original', () => {
    const { model, adam } = trainedSetup();
    const saved = decodeModel(encodeModel(model, adam.getState()), 'ckpt.gq');
    const resumed = new Adam(model.params.length, makeSchedule(0.01, { kind: 'constant' }));
    if (saved.optimizer === undefined) throw new Error('no optimizer state decoded');
    resumed.setState(saved.optimizer);
    const g = randomFloats(new Rng(3), model.params.length);
    adam.step(model.params, g, 4);
    resumed.step(saved.model.params, g, 4);
    expect(bits(saved.model.params)).toEqual(bits(model.params));
  });

  it('gives no optimizer and empty meta when none were saved', () => {
    const saved = decodeModel(encodeModel(new Model('mlp:4-3-2')), 'm.gq');
    expect([saved.optimizer, saved.meta]).toEqual([undefined, {}]);
  });

  it('keeps a negative zero and subnormal values', () => {
    const model = new Model('mlp:2-2');
    model.params.set([-0, 1e-45, -3.4e38, 1]);
    expect(bits(decodeModel(encodeModel(model), 'z.gq').model.params)).toEqual(bits(model.params));
  });
});

describe('decodeModel errors name the source', () => {
  const withPayload = (change: (doc: Record<string, unknown>) => void) => {
    const doc = encodedPayload();
    change(doc);
    return fileWith(doc);
  };
  it.each([
    ['garbage bytes', 'not a gradq model file', () => new Uint8Array([0xde, 0xad, 0xbe, 0xef, 1, 2, 3])],
    ['an empty file', 'not a gradq model file', () => new Uint8Array(0)],
    ['a msgpack number', 'not a gradq model file', () => packr.pack(42)],
    ['another format header', 'no "gradq-model" header', () => fileWith(encodedPayload(), { format: 'onnx' })],
    ['an unsupported version', 'format version 3 is not supported (this gradq reads versions 1 and 2)', () => fileWith({}, { version: 3 })],
    ['no payload', 'damaged: its payload or checksum is missing', () => fileWith({}, { payload: undefined })],
    ['a short checksum', 'damaged: its payload or checksum is missing', () => fileWith({}, { sha256: new Uint8Array(31) })],
    ['a payload that is not a map', 'payload is not a map', () => fileWith([1, 2] as unknown as Record<string, unknown>)],
    ['a missing spec', 'model spec missing', () => withPayload((d) => delete d.spec)],
    ['an unknown model spec', 'unknown model spec "rnn:1"', () => withPayload((d) => (d.spec = 'rnn:1'))],
    ['params for another model', 'parameters: 316 bytes, expected 352 (88 float32)', () => withPayload((d) => (d.spec = 'mlp:7-5-5-3'))],
    [
      'params one float short',
      'parameters: 312 bytes, expected 316 (79 float32)',
      () => withPayload((d) => (d.params = (d.params as Uint8Array).subarray(4))),
    ],
    ['params missing', 'parameters missing', () => withPayload((d) => delete d.params)],
    ['a NaN in params', 'parameters: value NaN at index 5 is not finite', () => withNonFinite(5, Number.NaN)],
    ['an Infinity in params', 'parameters: value Infinity at index 0 is not finite', () => withNonFinite(0, Infinity)],
    [
      'an unknown optimizer',
      'optimizer state malformed',
      () => withPayload((d) => ((d.optimizer as Record<string, unknown>).name = 'lion')),
    ],
    ['a negative optimizer step', 'optimizer step -1 is not', () => withPayload((d) => ((d.optimizer as Record<string, unknown>).t = -1))],
    [
      'a short optimizer buffer',
      'optimizer buffer 1: 8 bytes, expected 316 (79 float32)',
      () => withPayload((d) => ((d.optimizer as { buffers: Uint8Array[] }).buffers[1] = new Uint8Array(8))),
    ],
  ] as [string, string, () => Uint8Array][])('%s: "%s"', (_what, text, bytes) => {
    const message = configErrorOf(() => decodeModel(bytes(), 'runs/ckpt-7.gq')).message;
    expect(message).toContain('runs/ckpt-7.gq: ');
    expect(message).toContain(text);
  });
});

describe('decodeModel finds damage', () => {
  // A checkpoint-like file: parameters, Adam state, and the counters a resumed run continues from.
  const { model, adam } = trainedSetup();
  const meta = { kind: 'checkpoint', nextStep: 777, epochLoss: 1234.5, epochCorrect: 54321 };
  const file = Buffer.from(encodeModel(model, adam.getState(), meta));
  /** Where `bytes` sit in the file (each region below is found once). */
  const at = (bytes: Uint8Array): number => {
    const i = file.indexOf(bytes);
    expect(i, 'region found').toBeGreaterThan(0);
    expect(file.indexOf(bytes, i + 1), 'region found once').toBe(-1);
    return i;
  };
  const flipped = (index: number, bit = 0x01): Buffer => {
    const copy = Buffer.from(file);
    copy[index] ^= bit;
    return copy;
  };
  const floats = (a: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);
  const state = adam.getState();
  const key = (name: string) => Buffer.from(name);

  it.each([
    ['a parameter', () => at(floats(model.params)) + 4 * 17 + 3],
    ['the first moment of Adam', () => at(floats(state.buffers[0])) + 4 * 40],
    ['the second moment of Adam', () => at(floats(state.buffers[1])) + 4 * 78 + 2],
    ['the optimizer step', () => at(Buffer.from([...key('t'), 0x02])) + 1],
    ['the correct count of the epoch (train_accuracy)', () => at(key('epochCorrect')) + 'epochCorrect'.length + 2],
    ['the next step', () => at(key('nextStep')) + 'nextStep'.length + 2],
    ['the model spec', () => at(key('mlp:7-5-4-3')) + 6],
    ['the checksum', () => at((fileMap(file).sha256 as Uint8Array).subarray(0, 8)) + 5],
  ])('a flipped bit in %s: DamagedModelFileError naming the file', (_what, where) => {
    expect(() => decodeModel(flipped(where()), 'ckpt/checkpoint.gradq')).toThrow(DamagedModelFileError);
    expect(() => decodeModel(flipped(where()), 'ckpt/checkpoint.gradq')).toThrow(
      /^ckpt\/checkpoint\.gradq: damaged: the SHA-256 of its content is [0-9a-f]{16}…, the file records [0-9a-f]{16}… \(changed or cut short since it was written\); use a good copy$/,
    );
  });

  it('a flipped bit anywhere in a file is a ConfigError, never a model', () => {
    const small = Buffer.from(encodeModel(new Model('mlp:2-2', { seed: 4 }), undefined, { epochCorrect: 9 }));
    for (let i = 0; i < small.length; i++) {
      for (const bit of [0x01, 0x80]) {
        const bad = Buffer.from(small);
        bad[i] ^= bit;
        expect(() => decodeModel(bad, 'm.gq'), `byte ${i} ^ ${bit}`).toThrow(ConfigError);
      }
    }
  });

  it('a file cut short is a ConfigError', () => {
    for (const keep of [file.length - 1, file.length - 300, 40]) {
      expect(() => decodeModel(file.subarray(0, keep), 'm.gq')).toThrow(ConfigError);
    }
  });
});

function withNonFinite(index: number, value: number): Uint8Array {
  const model = new Model('mlp:7-5-4-3');
  model.params[index] = value;
  return encodeModel(model);
}
