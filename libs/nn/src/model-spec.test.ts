import { describe, expect, it } from 'vitest';
import { ConfigError } from './config-error.js';
import { architectureOf, formatModelSpec, parseModelSpec } from './model-spec.js';

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
