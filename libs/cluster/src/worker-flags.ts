import type { FlagSpec, FlagSpecs } from '@gradq/cli';
import { DEFAULT_REDIS_URL, REDIS_URL_ENV } from './redis-url.js';
import { DEFAULT_QUEUE } from './run-keys.js';
import { SECRET_ENV, SECRET_FILE_ENV } from './shared-secret.js';

/** The --secret-file flag, the same for `gradq train` and `gradq worker`. */
export const SECRET_FILE_FLAG = {
  type: 'string',
  placeholder: 'FILE',
  help: `sign jobs, θ and results with the shared secret in FILE (a line of 16 bytes or more) and refuse unsigned ones (default: $${SECRET_FILE_ENV}, else the secret itself in $${SECRET_ENV}; neither: unsigned)`,
} satisfies FlagSpec;

/** Flags of `gradq worker`: part of the contract, since the coordinator's launcher starts workers with them. */
export const WORKER_FLAGS = {
  redis: {
    type: 'string',
    placeholder: 'URL',
    help: `Redis to take shard jobs from, redis:// or rediss:// (default: $${REDIS_URL_ENV}, else ${DEFAULT_REDIS_URL})`,
  },
  queue: { type: 'string', placeholder: 'NAME', default: DEFAULT_QUEUE, help: 'queue name (the coordinator’s --queue)' },
  'data-dir': { type: 'string', placeholder: 'ROOT', help: 'read ROOT/<dataset>/*.gz instead of the download cache' },
  name: { type: 'string', placeholder: 'ID', help: 'worker name in results and logs (default: host:pid-RAND, unique per process)' },
  'secret-file': SECRET_FILE_FLAG,
  quiet: { type: 'boolean', help: 'log only errors' },
} satisfies FlagSpecs;
