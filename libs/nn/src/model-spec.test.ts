import { describe, expect, it } from 'vitest';
import { ConfigError } from './config-error.js';
import { architectureOf, formatModelSpec, MODEL_PRESETS, parseModelSpec } from './model-spec.js';

describe('parseModelSpec', () => {
  it.each([
    ['mlp:784-128-10', [784, 128, 10]],
    ['mlp:784-256-128-10', [784, 256, 128, 10]],
    ['mlp:1-2', [1, 2]],
  ])('accepts %s', (spec, sizes) => expect(parseModelSpec(spec)).toEqual({ kind: 'mlp', sizes }));

  it.each(['cnn:1', 'mlp:784', 'mlp:0-10', 'mlp:784-128-1', 'mlp:784--10', 'mlp:784-128-10 ', 'MLP:784-10', 'mlp:70000-10', ''])(
    'rejects "%s" with a ConfigError quoting it',
    (spec) => {
      expect(() => parseModelSpec(spec)).toThrow(ConfigError);
      expect(() => parseModelSpec(spec)).toThrow(`"${spec}"`);
    },
  );
});

describe('formatModelSpec', () => {
  it.each(['mlp:784-128-10', 'mlp:1-2'])('gives %s back', (spec) => expect(formatModelSpec(parseModelSpec(spec))).toBe(spec));
});

describe('architectureOf', () => {
  it('makes an MLP dense layers of the hidden and class sizes with a ReLU between each two', () => {
    expect(architectureOf(parseModelSpec('mlp:7-5-4-3'))).toEqual({
      input: [7],
      layers: [{ kind: 'dense', units: 5 }, { kind: 'relu' }, { kind: 'dense', units: 4 }, { kind: 'relu' }, { kind: 'dense', units: 3 }],
    });
  });

  it('makes a model without hidden layers one dense layer', () => {
    expect(architectureOf(parseModelSpec('mlp:784-10'))).toEqual({ input: [784], layers: [{ kind: 'dense', units: 10 }] });
  });
});

describe('convolutional specs', () => {
  it('reads the lenet preset as its layers, a flatten before the first dense', () => {
    expect(parseModelSpec('lenet')).toEqual({
      kind: 'cnn',
      input: [1, 28, 28],
      layers: [
        { kind: 'conv2d', k: 5, filters: 16, padding: 'valid' },
        { kind: 'relu' },
        { kind: 'maxpool2d' },
        { kind: 'conv2d', k: 5, filters: 32, padding: 'valid' },
        { kind: 'relu' },
        { kind: 'maxpool2d' },
        { kind: 'flatten' },
        { kind: 'dense', units: 128 },
        { kind: 'relu' },
        { kind: 'dense', units: 10 },
      ],
    });
  });

  it.each(Object.entries(MODEL_PRESETS))('formats preset %s as its own text', (name, text) => {
    expect(formatModelSpec(parseModelSpec(name))).toBe(text);
    expect(formatModelSpec(parseModelSpec(text))).toBe(text);
  });

  it('implies the flatten before a dense layer and reads same padding', () => {
    const spec = parseModelSpec('cnn:3x9x7/conv3x4same/relu/dense5');
    expect(formatModelSpec(spec)).toBe('cnn:3x9x7/conv3x4same/relu/flatten/dense5');
    expect(architectureOf(spec).input).toEqual([3, 9, 7]);
  });

  it.each([
    ['cnn:28x28/conv5x16/dense10', /input "28x28" is not CxHxW/],
    ['cnn:1x28x28', /no layers after the input/],
    ['cnn:1x28x28/conv5x16/relu', /the last layer must be denseN/],
    ['cnn:1x28x28/conv4x8same/dense10', /'same' padding needs an odd kernel size/],
    ['cnn:1x28x28/dense10/conv3x8/dense10', /conv3x8 after a flatten or dense layer/],
    ['cnn:1x28x28/tanh/dense10', /unknown layer "tanh"/],
    ['cnn:1x28x28/dense1', /needs at least 2 classes/],
    ['lenet5', /unknown model spec "lenet5"/],
  ])('rejects %s, saying why', (spec, why) => {
    expect(() => parseModelSpec(spec)).toThrow(ConfigError);
    expect(() => parseModelSpec(spec)).toThrow(why);
  });
});
