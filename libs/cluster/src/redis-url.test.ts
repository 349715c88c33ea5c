import { UsageError } from '@gradq/cli';
import { describe, expect, it } from 'vitest';
import { checkRedisUrl, isLocalRedis, redactRedisUrl } from './redis-url.js';

describe('redactRedisUrl', () => {
  it.each([
    ['redis://:secret@host:6379', 'redis://:***@host:6379'],
    ['redis://user:secret@host:6379/0', 'redis://user:***@host:6379/0'],
    ['rediss://:p%40ss@host', 'rediss://:***@host'],
    ['redis://127.0.0.1:6379', 'redis://127.0.0.1:6379'],
  ])('%s → %s', (url, safe) => expect(redactRedisUrl(url)).toBe(safe));
});

describe('checkRedisUrl', () => {
  it('accepts redis:// and rediss://', () => {
    expect(checkRedisUrl('redis://127.0.0.1:6379').port).toBe('6379');
    expect(checkRedisUrl('rediss://:pw@cache.example:6380').protocol).toBe('rediss:');
  });
  it.each(['http://:secret@host:80', 'not a url :secret@', 'redis://:secret@'])('rejects %s without showing the password', (url) => {
    try {
      checkRedisUrl(url);
    } catch (e) {
      expect(e).toBeInstanceOf(UsageError);
      expect((e as Error).message).not.toContain('secret');
      return;
    }
    throw new Error(`accepted ${url}`);
  });
  it('tells local addresses', () => {
    expect(isLocalRedis(new URL('redis://localhost:6379'))).toBe(true);
    expect(isLocalRedis(new URL('redis://10.0.0.5:6379'))).toBe(false);
  });
});
