import { UsageError, type FlagSpecs, type ParsedFlags } from '@gradq/cli';
import { checkShardCount } from '@gradq/data';
import { checkModelSpec, GRADIENT_CODECS, OPTIMIZER_NAMES, type GradientCodec, type ModelSpec } from '@gradq/nn';
import { parseSyncMode, syncModeName } from '@gradq/train';

/** Flags of `gradq bench`. */
export const BENCH_FLAGS = {
  workers: {
    type: 'string',
    placeholder: 'N,N…',
    default: '1,2,4',
    help: 'worker counts to run the cluster with, one run each (0 = only external workers: start gradq worker on the printed queue)',
  },
  batch: { type: 'string', placeholder: 'B,B…', default: '64,512', help: 'global batch sizes; every trainer runs once per batch' },
  shards: {
    type: 'int',
    min: 1,
    default: 4,
    placeholder: 'K',
    help:
      'shards per batch for every run: the same for every worker count, so that runs do the same work ' +
      'and must end with the same parameters (a worker count only decides who computes the shards)',
  },
  model: {
    type: 'string',
    placeholder: 'SPEC',
    default: 'mlp:784-128-10',
    help: 'network, as gradq train --model: lenet, convnet, mlp:… or cnn:…',
  },
  optimizer: { type: 'string', choices: OPTIMIZER_NAMES, default: 'adam', help: 'optimizer (the reference trainers always use Adam)' },
  compress: {
    type: 'string',
    choices: GRADIENT_CODECS,
    default: 'none',
    help: 'gradq train --compress for every gradq run (the reference trainers never compress); bytes per step are in the table and bench.json',
  },
  shm: {
    type: 'string',
    choices: ['auto', 'off'],
    default: 'auto',
    help: 'gradq train --shm for every run: auto (θ and gradients of local workers through shared memory) or off (all through Redis)',
  },
  'train-samples': { type: 'int', min: 1, default: 30000, placeholder: 'N', help: 'train on the first N MNIST samples' },
  epochs: { type: 'int', min: 1, default: 1, help: 'passes over the training samples' },
  'data-dir': { type: 'string', placeholder: 'ROOT', help: 'read ROOT/mnist/*.gz instead of the download cache' },
  out: {
    type: 'string',
    placeholder: 'DIR',
    default: 'bench-results',
    help: 'write DIR/bench.json and DIR/bench.svg (created if missing)',
  },
  'skip-reference': {
    type: 'boolean',
    help: 'skip the reference trainer: NumPy for an MLP (tools/numpy_mlp.py), PyTorch on one thread for a CNN (tools/torch_cnn.py); by default it runs whenever python3 can import it',
  },
  queue: {
    type: 'string',
    placeholder: 'PREFIX',
    default: 'gradq-bench',
    help: 'prefix of the queue names; each cluster run gets its own queue PREFIX-<run id>-b<batch>-w<workers>',
  },
  sync: {
    type: 'string',
    placeholder: 'MODE',
    default: 'sync',
    help: 'how every run synchronises its shards, as gradq train --sync: sync | local:H (local SGD: a step of the table is then a round of H steps; no reference trainer)',
  },
  repeat: {
    type: 'int',
    min: 1,
    max: 20,
    default: 1,
    placeholder: 'N',
    help:
      'run the in-process run and each cluster run N times, alternately, and report the median repeat with the range beside it ' +
      '(a machine whose speed drifts then slows both sides of a ratio alike)',
  },
  json: { type: 'boolean', help: 'print the results as one JSON object on stdout (the table goes to stderr)' },
  fit: {
    type: 'boolean',
    help: 'fit a step-time model (compute/N + fixed + per worker + bytes/bandwidth) to each batch’s cluster runs (2 or more worker counts), print it beside the measured points, and project N = 16, 64, 256 workers on 10 GbE',
  },
} satisfies FlagSpecs;

/** What one `gradq bench` invocation runs. */
export interface BenchPlan {
  workers: number[];
  batches: number[];
  shards: number;
  model: string;
  /** `model`, parsed. */
  spec: ModelSpec;
  optimizer: string;
  /** gradq train --sync of every run: 'sync' or 'local:H'. */
  sync: string;
  /** gradq train --compress of every gradq run. */
  compress: GradientCodec;
  /** gradq train --shm of every gradq run. */
  shm: string;
  trainSamples: number;
  epochs: number;
  dataDir?: string;
  out: string;
  /** Run the reference trainer (NumPy or PyTorch). */
  reference: boolean;
  queuePrefix: string;
  json: boolean;
  /** Fit the step-time model (report/step-model.ts). */
  fit: boolean;
  /** Times each gradq run is made, alternately (report/repeats.ts). */
  repeat: number;
}

const QUEUE_PREFIX_NAME = /^[A-Za-z0-9_.-]{1,32}$/;

/** Checks the flags of `gradq bench`; every problem is a one-line UsageError quoting the value. */
export function benchPlanFromFlags(f: ParsedFlags<typeof BENCH_FLAGS>): BenchPlan {
  const workers = parseCountList('workers', f.workers, 0);
  const batches = parseCountList('batch', f.batch, 1);
  const { shards, model, optimizer, epochs, out, json, fit } = f;
  if (fit && workers.filter((n) => n > 0).length < 2) {
    throw new UsageError(`--fit needs cluster runs at two or more worker counts (--workers ${f.workers}; e.g. --workers 1,2,3,4)`);
  }
  for (const batch of batches) checkShardCount(shards, batch);
  const queuePrefix = f.queue;
  if (!QUEUE_PREFIX_NAME.test(queuePrefix)) throw new UsageError(`--queue ${queuePrefix}: use 1-32 letters, digits, _ . -`);
  const spec = checkModelSpec(model);
  // gradq train's own parser (a ConfigError about 'sync' is reported as --sync's), and its name for the mode.
  const sync = syncModeName(parseSyncMode(f.sync));
  if (sync !== 'sync' && f.compress !== 'none') {
    throw new UsageError(`--compress ${f.compress} is for synchronous runs (local SGD sends no gradients): drop it or use --sync sync`);
  }
  const trainSamples = f['train-samples'];
  return {
    workers,
    batches,
    shards,
    model,
    spec,
    optimizer,
    sync,
    compress: f.compress,
    shm: f.shm,
    trainSamples,
    epochs,
    dataDir: f['data-dir'],
    out,
    // The references train synchronously: beside a local SGD run they would measure something else.
    reference: !f['skip-reference'] && sync === 'sync',
    queuePrefix,
    json,
    fit,
    repeat: f.repeat,
  };
}

/** "1,2,4" → [1, 2, 4]: whole numbers ≥ `min`, each at most once, in the order given. */
export function parseCountList(flag: string, raw: string, min: number): number[] {
  const items = raw.split(',').map((s) => s.trim());
  const out: number[] = [];
  for (const item of items) {
    if (!/^\d+$/.test(item) || !Number.isSafeInteger(Number(item))) {
      throw new UsageError(`--${flag} ${raw}: "${item}" is not a whole number (use a list such as 1,2,4)`);
    }
    const n = Number(item);
    if (n < min) throw new UsageError(`--${flag} ${raw}: ${n} must be >= ${min}`);
    if (out.includes(n)) throw new UsageError(`--${flag} ${raw}: ${n} is given twice`);
    out.push(n);
  }
  return out;
}
