import { ClusterConfigError } from './cluster-config-error.js';

export const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379';
/** Environment variable read when no URL is given (keeps passwords out of process lists). */
export const REDIS_URL_ENV = 'GRADQ_REDIS_URL';

/** Which Redis to use, and whether someone chose it (a URL given, or the environment variable set). */
export interface RedisUrlChoice {
  url: string;
  /** false when it is DEFAULT_REDIS_URL because nothing else was given. */
  chosen: boolean;
}

/**
 * The one lookup of the Redis URL, for the coordinator and the workers alike: the URL given (a flag), else
 * $GRADQ_REDIS_URL, else DEFAULT_REDIS_URL. An empty environment variable counts as not set.
 */
export function resolveRedisUrl(given: string | undefined, env: NodeJS.ProcessEnv = process.env): RedisUrlChoice {
  const fromEnv = env[REDIS_URL_ENV] === '' ? undefined : env[REDIS_URL_ENV];
  const url = given ?? fromEnv;
  return url === undefined ? { url: DEFAULT_REDIS_URL, chosen: false } : { url, chosen: true };
}

/**
 * Checks a Redis URL: redis:// or rediss:// (TLS), with a host and, if any, a port number, a database number
 * (/N) and %-escapes in the user and password that decode.
 */
export function checkRedisUrl(url: string): URL {
  const fail = (why: string): never => {
    throw new ClusterConfigError(`Redis URL ${redactRedisUrl(url)}: ${why}`);
  };
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return fail('not a URL (use redis://[:password@]host:port or rediss://…)');
  }
  if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') {
    fail(`scheme ${parsed.protocol} is not redis: or rediss:`);
  }
  if (parsed.hostname === '') fail('no host');
  const db = parsed.pathname.replace(/^\//, '');
  if (db !== '' && !/^\d{1,9}$/.test(db)) {
    fail(`database ${JSON.stringify(db.slice(0, 40))} is not a number (use …/0, …/1, …)`);
  }
  try {
    decodeURIComponent(parsed.username);
    decodeURIComponent(parsed.password);
  } catch {
    fail('the user or password has a broken %-escape (write % as %25)');
  }
  return parsed;
}

/** The URL with its password (and user) replaced by ***, for logs, progress and --json. */
export function redactRedisUrl(url: string): string {
  // The credentials end at the LAST @ (as URL parsers read them), whatever a password contains.
  const m = /^([a-z][a-z0-9+.-]*:\/\/)(.*)@([^@]*)$/is.exec(url);
  if (m) {
    const colon = m[2].indexOf(':');
    const user = colon >= 0 ? m[2].slice(0, colon) : '';
    return `${m[1]}${user && !/[@/]/.test(user) ? `${user}:` : ':'}***@${m[3]}`;
  }
  // Not even scheme://…@: hide everything up to the last @, which may be a password.
  return url.includes('@') ? `***@${url.slice(url.lastIndexOf('@') + 1)}` : url;
}
