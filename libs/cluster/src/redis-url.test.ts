import { ClusterConfigError } from './cluster-config-error.js';
import { describe, expect, it } from 'vitest';
import { checkRedisUrl, redactRedisUrl } from './redis-url.js';

describe('redactRedisUrl', () => {
  it.each([
    ['redis://:secret@host:6379', 'secret', 'redis://:***@host:6379'],
    ['redis://user:secret@host:6379/0', 'secret', 'redis://user:***@host:6379/0'],
    ['rediss://:p%40ss@host', 'p%40ss', 'rediss://:***@host'],
    ['REDIS://:secret@host', 'secret', 'REDIS://:***@host'],
    ['not a url :secret@host', 'secret', '***@host'],
  ])('hides the password of %s', (url, secret, safe) => {
    expect(redactRedisUrl(url)).not.toContain(secret);
    expect(redactRedisUrl(url)).toBe(safe);
  });
  // The URL parser and ioredis take the LAST '@' of the authority as its end: these are valid URLs, and ioredis
  // connects to host with password 'p@ss' / 'top@secret'.
  it.each([
    ['redis://:p@ss@host:6379', 'ss@host'],
    ['redis://user:top@secret@host/0', 'secret'],
  ])('hides a password containing an unescaped @: %s', (url, part) => {
    expect(checkRedisUrl(url).hostname).toBe('host');
    expect(redactRedisUrl(url)).not.toContain(part);
  });
  it.each(['redis://127.0.0.1:6379', 'rediss://cache.example:6380/2', 'redis://[::1]:6379'])('leaves %s unchanged', (url) =>
    expect(redactRedisUrl(url)).toBe(url),
  );
});

describe('checkRedisUrl', () => {
  it.each([
    ['redis://127.0.0.1:6379', 'redis:', '127.0.0.1', '6379'],
    ['rediss://:pw@cache.example:6380', 'rediss:', 'cache.example', '6380'],
    ['redis://localhost', 'redis:', 'localhost', ''],
    ['redis://u:p%25w@localhost/3', 'redis:', 'localhost', ''],
  ])('accepts %s', (url, protocol, hostname, port) => expect(checkRedisUrl(url)).toMatchObject({ protocol, hostname, port }));
  it.each([
    ['http://:secret@host:80', /scheme http: is not redis: or rediss:/],
    ['not a url :secret@', /not a URL/],
    ['redis://:secret@', /Redis URL redis:\/\/:\*\*\*@/],
    ['redis://', /no host/],
    ['redis://host:notaport', /not a URL/],
    ['redis://:se/cret@host:6379', /not a URL/],
    ['redis://:secret@host:6379/zero', /database "zero" is not a number/],
    ['redis://:secret@host:6379/0/x', /database "0\/x" is not a number/],
    ['redis://:secret%zz@host:6379', /the user or password has a broken %-escape/],
  ])('rejects %s with a ClusterConfigError that never shows the password', (url, pattern) => {
    let error: unknown;
    try {
      checkRedisUrl(url);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ClusterConfigError);
    expect((error as Error).message).toMatch(pattern);
    for (const secret of ['secret', 'se/cret', 'cret']) expect((error as Error).message).not.toContain(secret);
  });
});
