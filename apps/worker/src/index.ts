export { workerCommand, LOCK_MS, STALLED_CHECK_MS } from './worker-command.js';
export { ShardProcessor, type TensorLink } from './shard-processor.js';
