import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ClusterConfigError } from './cluster-config-error.js';
import { MessageSigner } from './signing.js';
import { resolveSecret, SECRET_ENV, SECRET_FILE_ENV, type SharedSecret } from './shared-secret.js';

const dir = mkdtempSync(join(tmpdir(), 'gradq-secret-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const SECRET = '9f86d081884c7d659a2feaa0c55ad015';
function file(name: string, content: string | Uint8Array): string {
  const path = join(dir, name);
  writeFileSync(path, content);
  return path;
}

/** Whether `secret` signs as a signer of `text` does: the secret it holds is `text`. */
function holds(secret: SharedSecret | undefined, text: string): boolean {
  const probe = ['probe'];
  return secret !== undefined && new MessageSigner(Buffer.from(text)).verify('result', secret.signer.sign('result', probe), probe);
}

/** The message of the ClusterConfigError `fn` throws. */
function refusal(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(ClusterConfigError);
    return (e as Error).message;
  }
  throw new Error('expected a ClusterConfigError, nothing was thrown');
}

describe('resolveSecret', () => {
  it('is undefined when no secret is set: the run is unsigned', () => {
    expect(resolveSecret(undefined, {})).toBeUndefined();
  });

  it('reads the file given, without its line end, before the environment', () => {
    const path = file('given', `${SECRET}\n`);
    const secret = resolveSecret(path, { [SECRET_ENV]: 'another secret, long enough' });
    expect(holds(secret, SECRET)).toBe(true);
    expect(secret?.source).toBe(`file ${path}`);
    expect(holds(resolveSecret(file('crlf', `${SECRET}\r\n`), {}), SECRET)).toBe(true);
  });

  it('reads the file named by $GRADQ_SECRET_FILE, else takes $GRADQ_SECRET', () => {
    const path = file('env', SECRET);
    expect(holds(resolveSecret(undefined, { [SECRET_FILE_ENV]: path }), SECRET)).toBe(true);
    const inline = resolveSecret(undefined, { [SECRET_ENV]: SECRET });
    expect(holds(inline, SECRET)).toBe(true);
    expect(inline?.source).toBe(`$${SECRET_ENV}`);
  });

  it('hands the secret to a child in $GRADQ_SECRET (and drops $GRADQ_SECRET_FILE), so that the child holds the same', () => {
    const secret = resolveSecret(undefined, { [SECRET_FILE_ENV]: file('child', SECRET) });
    const env = secret?.childEnvironment({ PATH: '/bin', [SECRET_FILE_ENV]: 'x' }) ?? {};
    expect(env).toEqual({ PATH: '/bin', [SECRET_ENV]: SECRET });
    expect(holds(resolveSecret(undefined, env), SECRET)).toBe(true);
  });

  it.each([
    ['a missing file', () => resolveSecret(join(dir, 'none'), {}), /secret file .*none: cannot open it \(ENOENT\)/],
    ['a folder', () => resolveSecret(dir, {}), /cannot read it \(EISDIR\)/],
    ['an empty file', () => resolveSecret(file('empty', '\n'), {}), /0 bytes, a secret needs at least 16 \(e\.g\. openssl rand -hex 32\)/],
    ['a short secret', () => resolveSecret(file('short', 'hunter2\n'), {}), /7 bytes, a secret needs at least 16/],
    ['a long file', () => resolveSecret(file('long', 'x'.repeat(5000)), {}), /longer than 4096 bytes/],
    ['binary bytes', () => resolveSecret(file('bin', Buffer.from([...Buffer.from(SECRET), 0xff, 0xfe])), {}), /not UTF-8 text/],
    ['a NUL byte', () => resolveSecret(file('nul', `${SECRET}\0x`), {}), /holds a NUL byte/],
    ['both variables', () => resolveSecret(undefined, { [SECRET_FILE_ENV]: 'f', [SECRET_ENV]: SECRET }), /both \$GRADQ_SECRET_FILE and/],
    ['an empty $GRADQ_SECRET_FILE', () => resolveSecret(undefined, { [SECRET_FILE_ENV]: '' }), /GRADQ_SECRET_FILE is set but empty/],
    ['an empty $GRADQ_SECRET', () => resolveSecret(undefined, { [SECRET_ENV]: '' }), /\$GRADQ_SECRET: 0 bytes/],
    [
      'a missing file from the environment',
      () => resolveSecret(undefined, { [SECRET_FILE_ENV]: '/nope' }),
      /\/nope \(from \$GRADQ_SECRET_FILE\)/,
    ],
  ])('refuses %s, without quoting the secret', (_what, fn, pattern) => {
    const message = refusal(fn);
    expect(message).toMatch(pattern);
    expect(message).not.toContain('hunter2');
    expect(message).not.toContain(SECRET);
  });

  it('reads /dev/zero no further than it must', () => {
    expect(refusal(() => resolveSecret('/dev/zero', {}))).toMatch(/longer than 4096 bytes/);
  });
});
