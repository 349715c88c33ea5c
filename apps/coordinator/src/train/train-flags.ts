import { type FlagSpecs } from '@gradq/cli';
import { DEFAULT_MODEL, GRADIENT_CODECS, INIT_SCHEMES, OPTIMIZER_NAMES } from '@gradq/nn';
import { DATASET_NAMES, MAX_SHIFT } from '@gradq/data';
import { DEFAULT_QUEUE, DEFAULT_REDIS_URL, MAX_LEASE_STEPS, SECRET_FILE_FLAG, SHM_BASE } from '@gradq/cluster';

/** Flags of `gradq train`. The defaults are the README's training command. */
export const TRAIN_FLAGS = {
  local: { type: 'boolean', help: 'train in this process (no Redis, no workers)' },
  workers: {
    type: 'int',
    min: 0,
    placeholder: 'N',
    help: 'local worker processes to start (default: one per core); 0 = only external workers',
  },
  redis: {
    type: 'string',
    placeholder: 'URL',
    help: `Redis for the queue (default ${DEFAULT_REDIS_URL}; when nothing answers there and redis-server is on PATH, a private one is started)`,
  },
  queue: { type: 'string', placeholder: 'NAME', default: DEFAULT_QUEUE, help: 'queue name shared with the workers (their --queue)' },
  shm: {
    type: 'string',
    choices: ['auto', 'off'],
    default: 'auto',
    help: `auto: θ and gradients of workers on this machine travel through files in ${SHM_BASE}, Redis carrying pointers (others get them through Redis); off: all through Redis (see README, The cluster)`,
  },
  'secret-file': SECRET_FILE_FLAG,
  'give-up-after': {
    type: 'int',
    min: 1,
    default: 600,
    placeholder: 'SECONDS',
    help: 'stop (exit code 4) when a step has had no valid result for SECONDS and no worker is responsive',
  },
  'lease-steps': {
    type: 'int',
    min: 0,
    max: MAX_LEASE_STEPS,
    default: 0,
    placeholder: 'N',
    help: 'steps a worker holds its shards for (a step lease: one BullMQ job, the steps announced on a Redis stream; with --sync local:H, a round lease of its replicas’ rounds); 0 = about 1 s of steps, at most 64 (64 rounds with --sync local:H), never past an epoch; 1 = a BullMQ job per step or round (see README, The cluster)',
  },
  dataset: { type: 'string', choices: DATASET_NAMES, default: 'mnist', help: 'dataset to train on' },
  'data-dir': {
    type: 'string',
    placeholder: 'ROOT',
    help: 'read ROOT/<dataset>/*.gz (verified) instead of downloading to ~/.cache/gradq or $GRADQ_DATA_DIR',
  },
  model: {
    type: 'string',
    placeholder: 'SPEC',
    default: DEFAULT_MODEL,
    help: 'network: lenet, convnet, mlp:IN-HIDDEN…-CLASSES or cnn:CxHxW/LAYER/… (see README, Models)',
  },
  init: { type: 'string', choices: INIT_SCHEMES, default: 'he', help: 'weight initialisation' },
  epochs: { type: 'int', min: 1, max: 10_000, default: 12, help: 'passes over the training samples' },
  batch: { type: 'int', min: 1, default: 256, help: 'global mini-batch size (samples per optimizer step)' },
  shards: {
    type: 'int',
    min: 1,
    default: 2,
    help: 'shards per batch (jobs per step); the step gradient is the sum of shard sums in shard order',
  },
  optimizer: { type: 'string', choices: OPTIMIZER_NAMES, default: 'adam', help: 'optimizer' },
  lr: { type: 'number', min: 0, exclusiveMin: true, default: 0.001, help: 'peak learning rate' },
  schedule: {
    type: 'string',
    placeholder: 'SCHEDULE',
    default: 'cosine',
    help: 'constant | cosine | step:EPOCHS:GAMMA (×GAMMA every EPOCHS) | exponential:GAMMA (×GAMMA per epoch)',
  },
  warmup: {
    type: 'number',
    min: 0,
    default: 0,
    placeholder: 'EPOCHS',
    help: 'linear learning-rate warm-up, in epochs (may be fractional)',
  },
  'weight-decay': { type: 'number', min: 0, placeholder: 'WD', help: 'weight decay (L2; decoupled for adamw, default 0.01 there, else 0)' },
  momentum: { type: 'number', min: 0, placeholder: 'MU', help: 'momentum for momentum/nesterov (default 0.9)' },
  sync: {
    type: 'string',
    placeholder: 'MODE',
    default: 'sync',
    help: 'sync (one optimizer step per global batch) | local:H (local SGD, DiLoCo-style: each shard is a replica running H inner steps, in this process or on the cluster in round jobs of ⌈K/N⌉ replicas for N workers, then an outer step; see README, Local SGD)',
  },
  outer: {
    type: 'string',
    choices: ['avg', 'nesterov'],
    default: 'avg',
    help: 'local SGD outer optimizer: avg (mean of the replicas, lr 1) | nesterov (as DiLoCo)',
  },
  'outer-lr': {
    type: 'number',
    min: 0,
    exclusiveMin: true,
    placeholder: 'LR',
    help: 'local SGD outer learning rate (default 1 for avg, 0.7 for nesterov)',
  },
  'outer-momentum': { type: 'number', min: 0, placeholder: 'MU', help: 'momentum of --outer nesterov, in (0, 1) (default 0.9)' },
  compress: {
    type: 'string',
    choices: GRADIENT_CODECS,
    default: 'none',
    help: 'how shard gradient sums travel: none (float32) | fp16 | bf16 | int8 (per-block scales, error feedback per shard; see README, Compressed gradients)',
  },
  seed: { type: 'int', min: 0, default: 1, help: 'seed for initialisation and data order' },
  'train-samples': { type: 'int', min: 1, placeholder: 'N', help: 'train on the first N training samples only' },
  'augment-shift': {
    type: 'int',
    min: 0,
    max: MAX_SHIFT,
    default: 1,
    placeholder: 'PX',
    help: 'augment: move each training image by up to PX pixels each way (deterministic per seed, epoch and sample)',
  },
  out: { type: 'string', placeholder: 'FILE', help: 'save the trained model (and optimizer state) to FILE' },
  checkpoint: { type: 'string', placeholder: 'DIR', help: 'write DIR/checkpoint.gradq every --checkpoint-every steps (atomically)' },
  'checkpoint-every': { type: 'int', min: 1, default: 200, placeholder: 'STEPS', help: 'steps between checkpoints' },
  resume: { type: 'boolean', help: 'continue from DIR/checkpoint.gradq of --checkpoint (start afresh when there is none)' },
  json: { type: 'boolean', help: 'print a JSON summary as the last line of stdout' },
  dashboard: {
    type: 'string',
    placeholder: '[HOST:]PORT',
    help: 'serve the live dashboard (/), /api/run, /metrics (Prometheus) and /queues (Bull Board, read-only unless --dashboard-actions) at HOST:PORT (HOST default 127.0.0.1; port 0: any free one)',
  },
  'dashboard-keep': { type: 'boolean', help: 'keep the dashboard up after the run until Ctrl-C (or SIGTERM)' },
  'dashboard-actions': {
    type: 'boolean',
    help: 'let Bull Board at /queues act on the run’s jobs (retry, promote, remove, clean, pause); default read-only',
  },
  'log-dir': {
    type: 'string',
    placeholder: 'DIR',
    help: 'write the step and epoch figures to DIR/metrics.jsonl (JSON Lines) as the run goes; gradq dashboard --log-dir DIR shows them',
  },
} satisfies FlagSpecs;

/** Flags of `gradq eval`. */
export const EVAL_FLAGS = {
  model: { type: 'string', placeholder: 'FILE', help: 'model file saved by gradq train --out (required)' },
  dataset: { type: 'string', choices: DATASET_NAMES, default: 'mnist', help: 'dataset whose test split to evaluate on' },
  'data-dir': { type: 'string', placeholder: 'ROOT', help: 'read ROOT/<dataset>/*.gz instead of the download cache' },
  json: { type: 'boolean', help: 'print the results as one JSON object' },
  report: {
    type: 'string',
    placeholder: 'DIR',
    help: 'also write DIR/index.html (confusion matrix, accuracy per class, the most confidently wrong test images) and DIR/report.png, the page rendered in Chromium (when found)',
  },
} satisfies FlagSpecs;
