import { ConfigError } from './config-error.js';
import type { Architecture, LayerSpec } from './layers/layer-spec.js';

/**
 * A parsed model spec: what the text of `--model` stands for. Model is built from architectureOf(spec); a new kind
 * of spec needs its variant here, its parser and its case in architectureOf and formatModelSpec, not a change to
 * Model.
 * - `mlp:IN-H1-…-CLASSES`: a multilayer perceptron, layer sizes from input to classes, ReLU between dense layers.
 * - `cnn:CxHxW/LAYER/LAYER/…`: any sequence of layers over C×H×W images (see parseCnnSpec), e.g. the presets
 *   `lenet` and `convnet` (MODEL_PRESETS).
 */
export type ModelSpec = MlpSpec | CnnSpec;

export interface MlpSpec {
  kind: 'mlp';
  sizes: number[];
}

export interface CnnSpec {
  kind: 'cnn';
  /** One sample: [channels, height, width]. */
  input: [number, number, number];
  layers: LayerSpec[];
}

/** The model of `gradq train` without --model (README, Models: why). */
export const DEFAULT_MODEL = 'lenet';

/** Named architectures, as the same text a user could write (they compare one to one with PyTorch's torch_cnn.py). */
export const MODEL_PRESETS: Readonly<Record<string, string>> = {
  /** conv 5×5×16, ReLU, maxpool 2 → conv 5×5×32, ReLU, maxpool 2 → dense 512→128, ReLU → dense 128→10 (80,202 parameters). */
  lenet: 'cnn:1x28x28/conv5x16/relu/pool2/conv5x32/relu/pool2/flatten/dense128/relu/dense10',
  /** conv 3×3×32, ReLU → conv 3×3×64, ReLU, maxpool 2 → dense 9216→128, ReLU → dense 128→10 (1,199,882 parameters). */
  convnet: 'cnn:1x28x28/conv3x32/relu/conv3x64/relu/pool2/flatten/dense128/relu/dense10',
};

/** The largest model accepted: 2^24 parameters (64 MB per float32 buffer; a run holds four such buffers or more). */
export const MAX_PARAMETERS = 2 ** 24;

const HINT = `use ${Object.keys(MODEL_PRESETS).join(', ')}, mlp:IN-HIDDEN…-CLASSES (e.g. mlp:784-128-10) or cnn:CxHxW/LAYER/… (e.g. ${MODEL_PRESETS.lenet})`;

/** Parses a model spec: a preset name, `mlp:…` or `cnn:…`. Throws ConfigError quoting the spec and what is accepted. */
export function parseModelSpec(spec: string): ModelSpec {
  const preset = Object.hasOwn(MODEL_PRESETS, spec) ? MODEL_PRESETS[spec] : undefined;
  if (preset !== undefined) return parseModelSpec(preset);
  if (spec.startsWith('mlp:')) return parseMlpSpec(spec);
  if (spec.startsWith('cnn:')) return parseCnnSpec(spec);
  throw new ConfigError(`unknown model spec "${spec}" (${HINT})`, { about: 'model' });
}

function parseMlpSpec(spec: string): MlpSpec {
  const match = /^mlp:(\d+(?:-\d+)+)$/.exec(spec);
  if (!match) throw new ConfigError(`unknown model spec "${spec}" (${HINT})`, { about: 'model' });
  const sizes = match[1].split('-').map(Number);
  const bad = sizes.find((s) => !Number.isSafeInteger(s) || s < 1 || s > 65536);
  if (bad !== undefined) throw new ConfigError(`model spec "${spec}": layer size ${bad} is not in 1..65536`, { about: 'model' });
  if (sizes[sizes.length - 1] < 2) throw new ConfigError(`model spec "${spec}": needs at least 2 classes`, { about: 'model' });
  return { kind: 'mlp', sizes };
}

/**
 * `cnn:CxHxW/LAYER/…`, layers separated by `/`:
 * - `convKxF`: a K×K convolution to F channels, stride 1, 'valid' padding (the image shrinks by K-1); `convKxFsame`:
 *   'same' padding (odd K; the image keeps its size);
 * - `relu`; `pool2`: 2×2 max pooling, stride 2 (odd sizes round down, as PyTorch);
 * - `flatten`: C×H×W to C·H·W features (written by formatModelSpec; a dense layer after an image gets one implied);
 * - `denseN`: N units. The last layer must be dense, with one unit per class.
 */
function parseCnnSpec(spec: string): CnnSpec {
  const fail = (why: string): never => {
    throw new ConfigError(`model spec "${spec}": ${why}`, { about: 'model' });
  };
  const [head, ...tokens] = spec.slice('cnn:'.length).split('/');
  const input = /^(\d{1,4})x(\d{1,5})x(\d{1,5})$/.exec(head);
  if (!input) return fail(`input "${head}" is not CxHxW (e.g. 1x28x28)`);
  const [channels, height, width] = [Number(input[1]), Number(input[2]), Number(input[3])];
  if (channels < 1 || height < 1 || width < 1) fail(`input ${head} has a zero size`);
  if (tokens.length === 0) fail('no layers after the input (e.g. /conv5x16/relu/pool2/dense10)');
  const layers: LayerSpec[] = [];
  let flat = false;
  for (const token of tokens) {
    const conv = /^conv(\d{1,2})x(\d{1,5})(same)?$/.exec(token);
    const dense = /^dense(\d{1,6})$/.exec(token);
    if (conv) {
      if (flat) fail(`${token} after a flatten or dense layer (convolutions come first)`);
      const [k, filters] = [Number(conv[1]), Number(conv[2])];
      if (k < 1 || filters < 1) fail(`${token}: kernel size and filters must be >= 1`);
      if (conv[3] && k % 2 === 0) fail(`${token}: 'same' padding needs an odd kernel size`);
      layers.push({ kind: 'conv2d', k, filters, padding: conv[3] ? 'same' : 'valid' });
    } else if (token === 'relu') layers.push({ kind: 'relu' });
    else if (token === 'pool2') {
      if (flat) fail('pool2 after a flatten or dense layer');
      layers.push({ kind: 'maxpool2d' });
    } else if (token === 'flatten') {
      if (flat) fail('flatten twice');
      layers.push({ kind: 'flatten' });
      flat = true;
    } else if (dense) {
      if (!flat) layers.push({ kind: 'flatten' });
      flat = true;
      const units = Number(dense[1]);
      if (units < 1 || units > 65536) fail(`${token}: units ${units} is not in 1..65536`);
      layers.push({ kind: 'dense', units });
    } else fail(`unknown layer "${token}" (use convKxF, convKxFsame, relu, pool2, flatten or denseN)`);
  }
  const last = layers[layers.length - 1];
  if (last.kind !== 'dense') fail('the last layer must be denseN, one unit per class');
  else if (last.units < 2) fail('needs at least 2 classes');
  return { kind: 'cnn', input: [channels, height, width], layers };
}

/** The spec back as text (a preset as its cnn:… text, with every flatten written out). */
export function formatModelSpec(spec: ModelSpec): string {
  if (spec.kind === 'mlp') return `mlp:${spec.sizes.join('-')}`;
  const layer = (l: LayerSpec): string => {
    switch (l.kind) {
      case 'conv2d':
        return `conv${l.k}x${l.filters}${l.padding === 'same' ? 'same' : ''}`;
      case 'maxpool2d':
        return 'pool2';
      case 'dense':
        return `dense${l.units}`;
      default:
        return l.kind;
    }
  };
  return `cnn:${spec.input.join('x')}/${spec.layers.map(layer).join('/')}`;
}

/**
 * The layers a spec stands for: for mlp:IN-H1-…-CLASSES, input [IN] and dense(H1), relu, dense(H2), relu, …,
 * dense(CLASSES); for cnn:…, its input image and its layers as written.
 */
export function architectureOf(spec: ModelSpec): Architecture {
  if (spec.kind === 'cnn') return { input: spec.input, layers: spec.layers };
  const layers: LayerSpec[] = [];
  for (let l = 1; l < spec.sizes.length; l++) {
    if (l > 1) layers.push({ kind: 'relu' });
    layers.push({ kind: 'dense', units: spec.sizes[l] });
  }
  return { input: [spec.sizes[0]], layers };
}
