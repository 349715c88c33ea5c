import { Packr } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { Model } from './model.js';
import { Adam } from './optim/adam.js';
import { makeSchedule } from './optim/schedule.js';
import { paramsSha256 } from './params-hash.js';
import { Rng } from './rng.js';
import { decodeModel, encodeModel } from './serialize.js';
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

/** The encoded document as a plain object, to be altered and packed again. */
function encodedDoc(): Record<string, unknown> {
  const { model, adam } = trainedSetup();
  return packr.unpack(encodeModel(model, adam.getState(), { epoch: 2 })) as Record<string, unknown>;
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
  const withDoc = (change: (doc: Record<string, unknown>) => void) => {
    const doc = encodedDoc();
    change(doc);
    return packr.pack(doc);
  };
  it.each([
    ['garbage bytes', 'not a gradq model file', () => new Uint8Array([0xde, 0xad, 0xbe, 0xef, 1, 2, 3])],
    ['an empty file', 'not a gradq model file', () => new Uint8Array(0)],
    ['a msgpack number', 'not a gradq model file', () => packr.pack(42)],
    ['another format header', 'no "gradq-model" header', () => withDoc((d) => (d.format = 'onnx'))],
    ['an unsupported version', 'format version 2 is not supported', () => withDoc((d) => (d.version = 2))],
    ['a missing spec', 'model spec missing', () => withDoc((d) => delete d.spec)],
    ['an unknown model spec', 'unknown model spec "rnn:1"', () => withDoc((d) => (d.spec = 'rnn:1'))],
    ['params for another model', 'parameters: 316 bytes, expected 352 (88 float32)', () => withDoc((d) => (d.spec = 'mlp:7-5-5-3'))],
    [
      'params one float short',
      'parameters: 312 bytes, expected 316 (79 float32)',
      () => withDoc((d) => (d.params = (d.params as Uint8Array).subarray(4))),
    ],
    ['params missing', 'parameters missing', () => withDoc((d) => delete d.params)],
    ['a NaN in params', 'parameters: value NaN at index 5 is not finite', () => withNonFinite(5, Number.NaN)],
    ['an Infinity in params', 'parameters: value Infinity at index 0 is not finite', () => withNonFinite(0, Infinity)],
    ['an unknown optimizer', 'optimizer state malformed', () => withDoc((d) => ((d.optimizer as Record<string, unknown>).name = 'lion'))],
    ['a negative optimizer step', 'optimizer step -1 is not', () => withDoc((d) => ((d.optimizer as Record<string, unknown>).t = -1))],
    [
      'a short optimizer buffer',
      'optimizer buffer 1: 8 bytes, expected 316 (79 float32)',
      () => withDoc((d) => ((d.optimizer as { buffers: Uint8Array[] }).buffers[1] = new Uint8Array(8))),
    ],
  ] as [string, string, () => Uint8Array][])('%s: "%s"', (_what, text, bytes) => {
    const message = configErrorOf(() => decodeModel(bytes(), 'runs/ckpt-7.gq')).message;
    expect(message).toContain('runs/ckpt-7.gq: ');
    expect(message).toContain(text);
  });
});

function withNonFinite(index: number, value: number): Uint8Array {
  const model = new Model('mlp:7-5-4-3');
  model.params[index] = value;
  return encodeModel(model);
}
