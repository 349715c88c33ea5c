import { describe, expect, it } from 'vitest';
import { flagOf, formatFlags, parseCommandLine, parseFlags, type FlagSpecs } from './flags.js';
import { UsageError } from './usage-error.js';

const specs = {
  lr: { type: 'number', min: 0, exclusiveMin: true, default: 0.1, help: 'rate' },
  batch: { type: 'int', min: 1, default: 64, help: 'batch' },
  optimizer: { type: 'string', choices: ['sgd', 'adam'] as const, default: 'adam', help: 'opt' },
  json: { type: 'boolean', help: 'json' },
} satisfies FlagSpecs;

const parse = (...args: string[]) => parseFlags('train', args, specs);
const error = (...args: string[]) => {
  try {
    parse(...args);
  } catch (e) {
    expect(e).toBeInstanceOf(UsageError);
    return (e as Error).message;
  }
  throw new Error(`no error for ${args.join(' ')}`);
};

describe('parseFlags', () => {
  it('fills defaults', () => expect(parse()).toEqual({ lr: 0.1, batch: 64, optimizer: 'adam', json: false }));
  it('reads --name value and --name=value', () => expect(parse('--lr', '0.5', '--batch=32')).toMatchObject({ lr: 0.5, batch: 32 }));
  it('reads booleans', () => expect(parse('--json').json).toBe(true));
  it('takes a negative number as a value, then rejects it', () => expect(error('--lr', '-1')).toBe('--lr -1: must be > 0'));
  it('rejects zero where the minimum is exclusive', () => expect(error('--lr=0')).toBe('--lr 0: must be > 0'));
  it('rejects batch 0', () => expect(error('--batch', '0')).toBe('--batch 0: must be >= 1'));
  it('rejects fractions for whole numbers', () => expect(error('--batch', '2.5')).toBe('--batch 2.5: not a whole number'));
  it('rejects words for numbers', () => expect(error('--lr', 'fast')).toBe('--lr fast: not a decimal number'));
  it.each(['0x10', '0b1', '0o7', 'Infinity', '1e999', ' 1', '1_000', ''])('rejects %j, which is not a decimal number', (raw) =>
    expect(error('--lr', raw)).toBe(`--lr ${raw}: not a decimal number`),
  );
  it.each([
    ['1e-3', 0.001],
    ['.5', 0.5],
    ['+2', 2],
    ['3.', 3],
  ])('reads the decimal %s', (raw, value) => expect(parse('--lr', raw).lr).toBe(value));
  it('rejects values above the maximum', () =>
    expect(() => parseFlags('train', ['--epochs', '1001'], { epochs: { type: 'int', max: 1000, help: 'e' } })).toThrow(
      '--epochs 1001: must be <= 1000',
    ));
  it('types the parsed flags from their specs', () => {
    const f = parse('--json');
    const typed: { lr: number; batch: number; optimizer: 'sgd' | 'adam'; json: boolean } = f;
    expect(typed.json).toBe(true);
  });
  it('rejects unknown choices', () =>
    expect(error('--optimizer', 'rmsprop')).toBe('--optimizer rmsprop: unknown value (use one of sgd, adam)'));
  it('rejects unknown flags', () => expect(error('--lrr', '1')).toContain('unknown flag --lrr'));
  it('rejects a missing value', () => expect(error('--lr')).toContain('--lr needs a value'));
  it('rejects a repeated flag', () => expect(error('--lr', '1', '--lr', '2')).toContain('--lr given twice'));
  it('rejects positional arguments', () => expect(error('mnist')).toContain('unexpected argument "mnist"'));
  it('lists every flag with its default', () => {
    const text = formatFlags(specs);
    expect(text).toContain('--optimizer sgd|adam');
    expect(text).toContain('(default: 64)');
  });
});

describe('parseCommandLine with operands', () => {
  const line = (...args: string[]) => parseCommandLine('predict', args, specs, { operands: true });
  it('collects the arguments that are not flags, in order, between and after flags', () =>
    expect(line('a.png', '--batch', '8', 'b.png', '--json', 'c.jpg')).toEqual({
      flags: { lr: 0.1, batch: 8, optimizer: 'adam', json: true },
      operands: ['a.png', 'b.png', 'c.jpg'],
    }));
  it('takes a flag value as the value, not as an operand', () => expect(line('--optimizer', 'sgd').operands).toEqual([]));
  it('takes everything after -- as operands', () =>
    expect(line('--json', '--', '--lr', 'x.png')).toEqual({
      flags: expect.objectContaining({ json: true, lr: 0.1 }),
      operands: ['--lr', 'x.png'],
    }));
  it('still rejects unknown flags', () => expect(() => line('a.png', '--lrr', '1')).toThrow('unknown flag --lrr'));
  it('rejects operands unless asked for them', () =>
    expect(() => parseCommandLine('train', ['a.png'], specs)).toThrow('unexpected argument "a.png"'));
});

describe('flagOf', () => {
  it.each([
    ['shards', '--shards'],
    ['trainSamples', '--train-samples'],
    ['checkpointEvery', '--checkpoint-every'],
  ])('maps %s to %s', (key, flag) => expect(flagOf(key)).toBe(flag));
});
