export { InvalidMessageError } from './invalid-message-error.js';
export { runKeys, shardJobId, leaseJobId, checkName, QUEUE_PREFIX, DEFAULT_QUEUE, KEY_TTL_MS, type RunKeys } from './run-keys.js';
export {
  validateShardJob,
  jobShards,
  MAX_JOB_SHARDS,
  validateShardResult,
  validateShardFailure,
  signShardJob,
  checkShardJobSignature,
  type ShardJob,
  type ShardResult,
  type ShardFailure,
} from './shard-job.js';
export {
  validateRoundJob,
  validateRoundResult,
  signRoundJob,
  checkRoundJobSignature,
  ROUND_JOB_NAME,
  type RoundJob,
  type RoundResult,
  type JobOptimizer,
} from './round-job.js';
export {
  validateLeaseJob,
  validateLeaseRelease,
  leaseRoundJob,
  leaseStepJob,
  signLeaseJob,
  checkLeaseJobSignature,
  LEASE_JOB_NAME,
  MAX_LEASE_STEPS,
  type LeaseJob,
  type LeaseRelease,
} from './lease-job.js';
export { clockFields, readClockEntry, type ClockEntry } from './clock-entry.js';
export { encodeParams, decodeParamsInto, ParamsFetcher, type ParamsSignature } from './tensor-codec.js';
export {
  TensorConnection,
  RedisConnectionError,
  RedisReplyError,
  type TensorStore,
  type SlotRange,
  type StreamEntry,
} from './tensor-connection.js';
export { ClusterTensorConnection } from './cluster-tensor-connection.js';
export { RedisDeployment, type RedisTopology } from './redis-deployment.js';
export { SkippedBulk } from './resp-reply-parser.js';
export { checkGradientCodec, readCompressedGradientInto } from './compressed-gradient.js';
export { ResultWriter, encodeResultMessage, readResultMessage, readGradientInto, type ResultMessage } from './result-message.js';
export { checkRedisUrl, redactRedisUrl, resolveRedisUrl, DEFAULT_REDIS_URL, REDIS_URL_ENV, type RedisUrlChoice } from './redis-url.js';
export { ClusterConfigError } from './cluster-config-error.js';
export { connectRedis, connectCluster, waitForRedis, topologyFromInfo, RedisUnavailableError, RedisRefusedError } from './connect.js';
export { WORKER_FLAGS, SECRET_FILE_FLAG } from './worker-flags.js';
export { deleteKeysWithPrefix } from './cleanup.js';
export { MessageSigner, SIGNATURE_BYTES, type SignedKind } from './signing.js';
export { SharedSecret, resolveSecret, SECRET_ENV, SECRET_FILE_ENV, MIN_SECRET_BYTES } from './shared-secret.js';
export { encodeResidual, decodeResidual, readResidual } from './residual-store.js';
export { SharedMemoryDir, checkSharedDir, SHM_BASE } from './shared-memory/shm-dir.js';
export { decodePointer, type ShmPointer } from './shared-memory/shm-pointer.js';
export { readSlot } from './shared-memory/shm-slots.js';
export {
  SharedMemoryTensors,
  SharedMemoryUnreachableError,
  SHM_UNREACHABLE,
  MIN_SHARED_BYTES,
} from './shared-memory/shared-memory-tensors.js';
