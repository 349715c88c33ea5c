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
}

export type FlagSpecs = Record<string, FlagSpec>;
export type FlagValue = string | number | boolean | undefined;
export type ParsedFlags = Record<string, FlagValue>;

/**
 * Parses `--name value`, `--name=value` and boolean `--name` against the specs: unknown flags, missing values,
 * repeated flags, and numbers that are not numbers or are out of range are UsageErrors quoting the value.
 */
export function parseFlags(command: string, args: readonly string[], specs: FlagSpecs): ParsedFlags {
  const out: ParsedFlags = {};
  for (const [name, spec] of Object.entries(specs)) out[name] = spec.default;
  const seen = new Set<string>();
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (!arg.startsWith('--')) throw new UsageError(`gradq ${command}: unexpected argument "${arg}" (flags start with --)`);
    const eq = arg.indexOf('=');
    const name = eq >= 0 ? arg.slice(2, eq) : arg.slice(2);
    const spec = specs[name];
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
  return out;
}

function convert(name: string, raw: string, spec: FlagSpec): string | number {
  if (spec.type === 'string') {
    if (raw === '') throw new UsageError(`--${name} needs a value, got an empty string`);
    if (spec.choices && !spec.choices.includes(raw)) {
      throw new UsageError(`--${name} ${raw}: unknown value (use one of ${spec.choices.join(', ')})`);
    }
    return raw;
  }
  const value = raw.trim() === '' ? Number.NaN : Number(raw);
  if (!Number.isFinite(value)) throw new UsageError(`--${name} ${raw}: not a number`);
  if (spec.type === 'int' && !Number.isSafeInteger(value)) throw new UsageError(`--${name} ${raw}: not a whole number`);
  if (spec.min !== undefined && (value < spec.min || (spec.exclusiveMin && value === spec.min))) {
    throw new UsageError(`--${name} ${raw}: must be ${spec.exclusiveMin ? '>' : '>='} ${spec.min}`);
  }
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
