import { describe, expect, it } from 'vitest';
import { addressUrl, parseListenAddress } from './listen-address.js';

describe('parseListenAddress', () => {
  it('takes a port alone as 127.0.0.1', () => expect(parseListenAddress('dashboard', '8080')).toEqual({ host: '127.0.0.1', port: 8080 }));
  it('takes port 0 (any free port)', () => expect(parseListenAddress('dashboard', '0')).toEqual({ host: '127.0.0.1', port: 0 }));
  it('takes HOST:PORT', () => expect(parseListenAddress('dashboard', '0.0.0.0:9000')).toEqual({ host: '0.0.0.0', port: 9000 }));
  it('takes a host name', () => expect(parseListenAddress('dashboard', 'localhost:1')).toEqual({ host: 'localhost', port: 1 }));
  it('takes IPv6 in brackets', () => expect(parseListenAddress('dashboard', '[::1]:8080')).toEqual({ host: '::1', port: 8080 }));
  it('refuses a port above 65535', () =>
    expect(() => parseListenAddress('dashboard', '65536')).toThrow(/--dashboard "65536": the port must be .* 0 to 65535/));
  it('refuses a port that is not a number', () => expect(() => parseListenAddress('listen', 'a:b')).toThrow(/--listen "a:b": the port/));
  it('refuses an empty value', () => expect(() => parseListenAddress('dashboard', '')).toThrow(/the port must be/));
  it('refuses an empty host', () => expect(() => parseListenAddress('dashboard', ':80')).toThrow(/"" is not a host name/));
  it('refuses a host with a path', () => expect(() => parseListenAddress('dashboard', 'a/b:80')).toThrow(/"a\/b" is not a host name/));
  it('refuses IPv6 without brackets', () => expect(() => parseListenAddress('dashboard', '::1:80')).toThrow(/IPv6 in brackets/));
  it('refuses a bracketed non-IPv6', () => expect(() => parseListenAddress('dashboard', '[x]:80')).toThrow(/\[x\] is not an IPv6 address/));
  it('writes IPv6 URLs in brackets', () => expect(addressUrl('::1', 80)).toBe('http://[::1]:80/'));
});
