import { ConfigError } from './config-error.js';

/** A multilayer perceptron: layer sizes from input to classes, ReLU between dense layers. */
export interface ModelSpec {
  kind: 'mlp';
  sizes: number[];
}

export const DEFAULT_MODEL = 'mlp:784-256-128-10';

/** Parses a spec such as `mlp:784-128-10` (input, hidden sizes…, classes). */
export function parseModelSpec(spec: string): ModelSpec {
  const match = /^mlp:(\d+(?:-\d+)+)$/.exec(spec);
  const hint = `use mlp:IN-HIDDEN…-CLASSES, e.g. mlp:784-128-10 or ${DEFAULT_MODEL}`;
  if (!match) throw new ConfigError(`unknown model spec "${spec}" (${hint})`);
  const sizes = match[1].split('-').map(Number);
  const bad = sizes.find((s) => !Number.isSafeInteger(s) || s < 1 || s > 65536);
  if (bad !== undefined) throw new ConfigError(`model spec "${spec}": layer size ${bad} is not in 1..65536`);
  if (sizes[sizes.length - 1] < 2) throw new ConfigError(`model spec "${spec}": needs at least 2 classes`);
  return { kind: 'mlp', sizes };
}

/** The spec back as text. */
export function formatModelSpec(spec: ModelSpec): string {
  return `${spec.kind}:${spec.sizes.join('-')}`;
}
