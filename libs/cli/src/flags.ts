import { UsageError } from './usage-error.js';

/** One command-line flag: how it is parsed, its default and its line in --help. */
export interface FlagSpec {
  type: 'string' | 'number' | 'int' | 'boolean';
  help: string;
  default?: string | number | boolean;
  /** Accepted values, for enumerations. */
  choices?: readonly string[];
  /** Shown in --help instead of the type, e.g. FILE. */
  placeholder?: string;
  /** Lowest accepted number (inclusive unless `exclusiveMin`). */
  min?: number;
  exclusiveMin?: boolean;
  /** Highest accepted number (inclusive). */
  max?: number;
}

export type FlagSpecs = Record<string, FlagSpec>;

/** The value a flag parses to: booleans are true/false, numbers numbers, strings strings (or one of `choices`). */
type FlagType<F extends FlagSpec> = ValueOfType<F['type'], F>;
type ValueOfType<T, F> = T extends 'boolean'
  ? boolean
  : T extends 'string'
    ? F extends { choices: readonly (infer C extends string)[] }
      ? C
      : string
    : number;

/**
 * Parsed flags, typed from their specs: a flag with a default (and every boolean, false unless given) always has a
 * value; any other flag is undefined when not given.
 */
export type ParsedFlags<S extends FlagSpecs = FlagSpecs> = {
  -readonly [K in keyof S]: S[K] extends { default: string | number | boolean }
    ? FlagType<S[K]>
    : S[K]['type'] extends 'boolean'
      ? boolean
      : FlagType<S[K]> | undefined;
};

/** A decimal number as people write it (1, -2.5, .5, 1e-3); no hex, octal, binary, Infinity or spaces. */
const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i;

/** A command line split into its flags and its operands (the arguments that are not flags, e.g. file names). */
export interface CommandLine<S extends FlagSpecs = FlagSpecs> {
  flags: ParsedFlags<S>;
  operands: string[];
}

/**
 * Parses `--name value`, `--name=value` and boolean `--name` against the specs: unknown flags, missing values,
 * repeated flags, and numbers that are not decimal numbers or are out of range are UsageErrors quoting the value.
 * Any other argument is an operand when `options.operands` is set (and everything after `--`), else a UsageError.
 */
export function parseCommandLine<S extends FlagSpecs>(
  command: string,
  args: readonly string[],
  specs: S,
  options: { operands?: boolean } = {},
): CommandLine<S> {
  const out: Record<string, string | number | boolean | undefined> = {};
  const operands: string[] = [];
  for (const [name, spec] of Object.entries(specs)) out[name] = spec.default ?? (spec.type === 'boolean' ? false : undefined);
  const seen = new Set<string>();
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (options.operands && arg === '--') {
      operands.push(...args.slice(i + 1));
      break;
    }
    if (!arg.startsWith('--')) {
      if (!options.operands) throw new UsageError(`gradq ${command}: unexpected argument "${arg}" (flags start with --)`);
      operands.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    const name = eq >= 0 ? arg.slice(2, eq) : arg.slice(2);
    const spec = Object.hasOwn(specs, name) ? specs[name] : undefined;
    if (!spec) {
      throw new UsageError(`gradq ${command}: unknown flag --${name} (see gradq ${command} --help)`);
    }
    if (seen.has(name)) throw new UsageError(`gradq ${command}: --${name} given twice`);
    seen.add(name);
    if (spec.type === 'boolean') {
      if (eq >= 0) {
        const v = arg.slice(eq + 1);
        if (v !== 'true' && v !== 'false') throw new UsageError(`--${name}=${v}: use --${name} or --${name}=false`);
        out[name] = v === 'true';
      } else out[name] = true;
      continue;
    }
    let raw: string;
    if (eq >= 0) raw = arg.slice(eq + 1);
    else {
      if (i + 1 >= args.length) throw new UsageError(`--${name} needs a value (${spec.placeholder ?? spec.type})`);
      raw = args[++i];
    }
    out[name] = convert(name, raw, spec);
  }
  return { flags: out as ParsedFlags<S>, operands };
}

/** parseCommandLine for a command that takes no operands: its flags. */
export function parseFlags<S extends FlagSpecs>(command: string, args: readonly string[], specs: S): ParsedFlags<S> {
  return parseCommandLine(command, args, specs).flags;
}

function convert(name: string, raw: string, spec: FlagSpec): string | number {
  if (spec.type === 'string') {
    if (raw === '') throw new UsageError(`--${name} needs a value, got an empty string`);
    if (spec.choices && !spec.choices.includes(raw)) {
      throw new UsageError(`--${name} ${raw}: unknown value (use one of ${spec.choices.join(', ')})`);
    }
    return raw;
  }
  const value = DECIMAL.test(raw) ? Number(raw) : Number.NaN;
  if (!Number.isFinite(value)) throw new UsageError(`--${name} ${raw}: not a decimal number`);
  if (spec.type === 'int' && !Number.isSafeInteger(value)) throw new UsageError(`--${name} ${raw}: not a whole number`);
  if (spec.min !== undefined && (value < spec.min || (spec.exclusiveMin && value === spec.min))) {
    throw new UsageError(`--${name} ${raw}: must be ${spec.exclusiveMin ? '>' : '>='} ${spec.min}`);
  }
  if (spec.max !== undefined && value > spec.max) throw new UsageError(`--${name} ${raw}: must be <= ${spec.max}`);
  return value;
}

/** The flag table of a command's --help. */
export function formatFlags(specs: FlagSpecs): string {
  const rows = Object.entries(specs).map(([name, s]) => {
    const value = s.type === 'boolean' ? '' : ` ${s.placeholder ?? (s.choices ? s.choices.join('|') : s.type.toUpperCase())}`;
    const def = s.default === undefined || s.default === false ? '' : ` (default: ${String(s.default)})`;
    return [`  --${name}${value}`, `${s.help}${def}`];
  });
  const width = Math.max(...rows.map(([l]) => l.length)) + 2;
  return rows.map(([l, r]) => l.padEnd(width) + r).join('\n');
}

/** The flag that sets a configuration key: `trainSamples` → `--train-samples`. */
export function flagOf(key: string): string {
  return `--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
}
