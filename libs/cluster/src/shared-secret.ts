import { closeSync, openSync, readSync } from 'node:fs';
import { ClusterConfigError } from './cluster-config-error.js';
import { MessageSigner } from './signing.js';

/** The environment variable naming a file that holds the shared secret. */
export const SECRET_FILE_ENV = 'GRADQ_SECRET_FILE';
/** The environment variable holding the shared secret itself (how the local launcher hands it to its workers). */
export const SECRET_ENV = 'GRADQ_SECRET';
/** The shortest secret accepted, in bytes. */
export const MIN_SECRET_BYTES = 16;
/** The longest secret file read, in bytes: a longer one is the wrong file (or a device such as /dev/zero). */
const MAX_SECRET_FILE_BYTES = 4096;

const HINT = 'e.g. openssl rand -hex 32';

/**
 * The secret a run's coordinator and workers share, and its signer. The secret is text (a line, without its end
 * of line) so that it can travel in an environment variable; it is never printed, and never put on a command line.
 */
export class SharedSecret {
  readonly #text: string;
  readonly signer: MessageSigner;

  /** `source` says where it came from, for logs (a file name or a variable name, never the secret). */
  constructor(
    text: string,
    readonly source: string,
  ) {
    this.#text = text;
    this.signer = new MessageSigner(Buffer.from(text, 'utf8'));
  }

  /**
   * `env` for a child process that is to hold the same secret: the secret in SECRET_ENV, and no SECRET_FILE_ENV
   * (the child needs no file, and must not find both).
   */
  childEnvironment(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
    const out: NodeJS.ProcessEnv = { ...env, [SECRET_ENV]: this.#text };
    delete out[SECRET_FILE_ENV];
    return out;
  }
}

/**
 * The shared secret of a run: read from `file` when one is given, else from the file named by $GRADQ_SECRET_FILE,
 * else from $GRADQ_SECRET; undefined when none is set (the run's messages are then unsigned). A secret that is set
 * but unusable (unreadable, empty, too short, not text) is a ClusterConfigError: never a silent run without it.
 */
export function resolveSecret(file: string | undefined, env: NodeJS.ProcessEnv = process.env): SharedSecret | undefined {
  if (file !== undefined) return new SharedSecret(checked(readSecretFile(file), `secret file ${file}`), `file ${file}`);
  const fromFile = env[SECRET_FILE_ENV];
  const inline = env[SECRET_ENV];
  if (fromFile !== undefined && inline !== undefined) {
    throw new ClusterConfigError(`both $${SECRET_FILE_ENV} and $${SECRET_ENV} are set: set one of them`);
  }
  if (fromFile !== undefined) {
    if (fromFile === '') throw new ClusterConfigError(`$${SECRET_FILE_ENV} is set but empty: name the file that holds the secret`);
    const what = `secret file ${fromFile} (from $${SECRET_FILE_ENV})`;
    return new SharedSecret(checked(readSecretFile(fromFile, what), what), `file ${fromFile}`);
  }
  if (inline !== undefined) return new SharedSecret(checked(Buffer.from(inline, 'utf8'), `$${SECRET_ENV}`), `$${SECRET_ENV}`);
  return undefined;
}

/** Up to MAX_SECRET_FILE_BYTES + 1 bytes of `file` (a pipe such as <(pass show gradq) is fine). */
function readSecretFile(file: string, what = `secret file ${file}`): Buffer {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch (e) {
    throw new ClusterConfigError(`${what}: cannot open it (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  try {
    const out = Buffer.alloc(MAX_SECRET_FILE_BYTES + 1);
    let length = 0;
    while (length < out.length) {
      const n = readSync(fd, out, length, out.length - length, null);
      if (n === 0) break;
      length += n;
    }
    return out.subarray(0, length);
  } catch (e) {
    throw new ClusterConfigError(`${what}: cannot read it (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  } finally {
    closeSync(fd);
  }
}

/** The secret in `bytes` (trailing line ends removed) as text, or a ClusterConfigError that never quotes it. */
function checked(bytes: Buffer, what: string): string {
  if (bytes.byteLength > MAX_SECRET_FILE_BYTES) {
    throw new ClusterConfigError(`${what}: longer than ${MAX_SECRET_FILE_BYTES} bytes (is it the right file? make one with ${HINT})`);
  }
  let end = bytes.byteLength;
  while (end > 0 && (bytes[end - 1] === 0x0a || bytes[end - 1] === 0x0d)) end--;
  const secret = bytes.subarray(0, end);
  if (secret.byteLength < MIN_SECRET_BYTES) {
    throw new ClusterConfigError(`${what}: ${secret.byteLength} bytes, a secret needs at least ${MIN_SECRET_BYTES} (${HINT})`);
  }
  if (secret.includes(0)) throw new ClusterConfigError(`${what}: holds a NUL byte; a secret must be text (${HINT})`);
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(secret);
  } catch {
    throw new ClusterConfigError(`${what}: is not UTF-8 text; a secret must be text (${HINT})`);
  }
}
