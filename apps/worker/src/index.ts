export { workerCommand, LOCK_MS, STALLED_CHECK_MS } from './worker-command.js';
export { ShardProcessor } from './shard-processor.js';
