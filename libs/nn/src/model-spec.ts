import { ConfigError } from './config-error.js';
import type { Architecture, LayerSpec } from './layers/layer-spec.js';

/**
 * A parsed model spec; today only the multilayer perceptron: layer sizes from input to classes, ReLU between dense
 * layers. Model is built from architectureOf(spec): another kind of spec (a CNN) needs its variant of this type, its
 * parser and its case in architectureOf and formatModelSpec, not a change to Model.
 */
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

/** The layers a spec stands for: for mlp:IN-H1-…-CLASSES, input [IN] and dense(H1), relu, dense(H2), relu, …, dense(CLASSES). */
export function architectureOf(spec: ModelSpec): Architecture {
  const layers: LayerSpec[] = [];
  for (let l = 1; l < spec.sizes.length; l++) {
    if (l > 1) layers.push({ kind: 'relu' });
    layers.push({ kind: 'dense', units: spec.sizes[l] });
  }
  return { input: [spec.sizes[0]], layers };
}
