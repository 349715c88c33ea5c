import { UsageError } from '@gradq/cli';

export const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379';
/** Environment variable read when --redis is not given (keeps passwords out of process lists). */
export const REDIS_URL_ENV = 'GRADQ_REDIS_URL';

/**
 * Checks a --redis URL: redis:// or rediss:// (TLS), with a host and, if any, a port number, a database number
 * (/N) and %-escapes in the user and password that decode.
 */
export function checkRedisUrl(url: string): URL {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new UsageError(`--redis ${redactRedisUrl(url)}: not a URL (use redis://[:password@]host:port or rediss://…)`);
  }
  if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') {
    throw new UsageError(`--redis ${redactRedisUrl(url)}: scheme ${parsed.protocol} is not redis: or rediss:`);
  }
  if (parsed.hostname === '') throw new UsageError(`--redis ${redactRedisUrl(url)}: no host`);
  const db = parsed.pathname.replace(/^\//, '');
  if (db !== '' && !/^\d{1,9}$/.test(db)) {
    throw new UsageError(`--redis ${redactRedisUrl(url)}: database ${JSON.stringify(db.slice(0, 40))} is not a number (use …/0, …/1, …)`);
  }
  try {
    decodeURIComponent(parsed.username);
    decodeURIComponent(parsed.password);
  } catch {
    throw new UsageError(`--redis ${redactRedisUrl(url)}: the user or password has a broken %-escape (write % as %25)`);
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
