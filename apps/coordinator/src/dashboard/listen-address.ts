import { isIP } from 'node:net';
import { UsageError } from '@gradq/cli';

/** Where the dashboard listens. */
export interface ListenAddress {
  host: string;
  port: number;
}

export const DEFAULT_DASHBOARD_HOST = '127.0.0.1';
const HOSTNAME = /^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

/**
 * `[HOST:]PORT` as --dashboard takes it: PORT 0..65535 (0: any free port), HOST an IPv4 address, a hostname or a
 * bracketed IPv6 address ([::1]:8080); without HOST, 127.0.0.1 (this machine only).
 */
export function parseListenAddress(flag: string, value: string): ListenAddress {
  const colon = value.lastIndexOf(':');
  const portText = colon < 0 ? value : value.slice(colon + 1);
  let host = colon < 0 ? DEFAULT_DASHBOARD_HOST : value.slice(0, colon);
  const fix = `give [HOST:]PORT, e.g. 8080 or 0.0.0.0:8080`;
  if (!/^\d{1,5}$/.test(portText) || Number(portText) > 65535) {
    throw new UsageError(`--${flag} ${JSON.stringify(value)}: the port must be a whole number from 0 to 65535 (${fix})`);
  }
  if (host.startsWith('[') && host.endsWith(']')) {
    host = host.slice(1, -1);
    if (isIP(host) !== 6) throw new UsageError(`--${flag} ${JSON.stringify(value)}: [${host}] is not an IPv6 address (${fix})`);
  } else if (isIP(host) !== 4 && !HOSTNAME.test(host)) {
    throw new UsageError(
      `--${flag} ${JSON.stringify(value)}: ${JSON.stringify(host)} is not a host name or address (${fix}; IPv6 in brackets: [::1]:8080)`,
    );
  }
  return { host, port: Number(portText) };
}

/** The URL of a listening address (IPv6 in brackets). */
export function addressUrl(host: string, port: number): string {
  return `http://${isIP(host) === 6 ? `[${host}]` : host}:${port}/`;
}
