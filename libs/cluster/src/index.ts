export { InvalidMessageError } from './invalid-message-error.js';
export { runKeys, shardJobId, checkName, QUEUE_PREFIX, DEFAULT_QUEUE, KEY_TTL_MS, type RunKeys } from './run-keys.js';
export { validateShardJob, validateShardResult, type ShardJob, type ShardResult } from './shard-job.js';
export { encodeParams, decodeParamsInto, encodeGradient, decodeGradient, decodeGradientInto, type GradientHeader } from './tensor-codec.js';
export { checkRedisUrl, redactRedisUrl, DEFAULT_REDIS_URL, REDIS_URL_ENV } from './redis-url.js';
export { connectRedis, waitForRedis, RedisUnavailableError } from './connect.js';
export { WORKER_FLAGS } from './worker-flags.js';
export { deleteKeysWithPrefix } from './cleanup.js';
