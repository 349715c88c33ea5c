import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DownloadError } from './download-error.js';
import { ensureDataset, type EnsureDatasetOptions } from './download.js';
import { getDatasetInfo } from './registry.js';
import { sha256Hex } from './sha256.js';
import { gzip, makeIdxImages } from './testing/idx-fixtures.js';

const MNIST_DIR = fileURLToPath(new URL('../../../../shared/data/mnist', import.meta.url));
const realFile = (name: string): Buffer => readFileSync(join(MNIST_DIR, name));

type Handler = (req: IncomingMessage, res: ServerResponse, nth: number) => void;

/** A local HTTP server; `nth` counts the requests for the same path, from 1. */
async function serve(handler: Handler): Promise<{ base: string; requests: string[]; close: () => Promise<void> }> {
  const requests: string[] = [];
  const server = createServer((req, res) => {
    requests.push(req.url ?? '');
    handler(req, res, requests.filter((u) => u === req.url).length);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    base: `http://127.0.0.1:${port}/mnist/`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Serves the real MNIST .gz files from the shared data folder. */
const serveReal: Handler = (req, res) => {
  const name = (req.url ?? '').replace(/^\/mnist\//, '');
  let body: Buffer;
  try {
    body = realFile(name);
  } catch {
    res.writeHead(404).end();
    return;
  }
  res.writeHead(200, { 'content-length': body.length, 'content-type': 'application/x-gzip' }).end(body);
};

async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => e.isFile())
    .map((e) => e.name)
    .sort();
}

const GZ_NAMES = ['t10k-images-idx3-ubyte.gz', 't10k-labels-idx1-ubyte.gz', 'train-images-idx3-ubyte.gz', 'train-labels-idx1-ubyte.gz'];

describe('ensureDataset', () => {
  let cacheDir: string;
  let closeServer: (() => Promise<void>) | undefined;
  const opts = (base: string, extra: EnsureDatasetOptions = {}): EnsureDatasetOptions => ({
    cacheDir,
    mirrors: [base],
    retries: 1,
    retryDelayMs: 1,
    ...extra,
  });
  const start = async (handler: Handler) => {
    const server = await serve(handler);
    closeServer = server.close;
    return server;
  };

  beforeEach(async () => {
    cacheDir = await mkdtemp(join(tmpdir(), 'gradq-download-'));
  });
  afterEach(async () => {
    await closeServer?.();
    closeServer = undefined;
    await rm(cacheDir, { recursive: true, force: true });
  });

  it('downloads the four files into <cache>/mnist/ and reports each as complete', async () => {
    const server = await start(serveReal);
    const completed: string[] = [];
    const root = await ensureDataset(
      'mnist',
      opts(server.base, {
        progress: (file, received, total) => {
          if (received === total) completed.push(file);
        },
      }),
    );
    expect(root).toBe(cacheDir);
    expect(await readdir(join(cacheDir, 'mnist'))).toEqual(GZ_NAMES);
    for (const name of GZ_NAMES) expect((await readFile(join(cacheDir, 'mnist', name))).equals(realFile(name))).toBe(true);
    expect(new Set(completed)).toEqual(new Set(GZ_NAMES.map((n) => `mnist/${n}`)));
  });

  it('makes no request when every cached file verifies', async () => {
    const server = await start(serveReal);
    await ensureDataset('mnist', opts(server.base));
    const before = server.requests.length;
    await ensureDataset('mnist', opts(server.base));
    expect(server.requests.length).toBe(before);
  });

  it('downloads again a cached file whose content does not verify', async () => {
    const server = await start(serveReal);
    await ensureDataset('mnist', opts(server.base));
    const path = join(cacheDir, 'mnist', 'train-labels-idx1-ubyte.gz');
    await writeFile(path, gzip(Uint8Array.of(1, 2, 3)));
    const before = server.requests.length;
    await ensureDataset('mnist', opts(server.base));
    expect(server.requests.slice(before)).toEqual(['/mnist/train-labels-idx1-ubyte.gz']);
    expect((await readFile(path)).equals(realFile('train-labels-idx1-ubyte.gz'))).toBe(true);
  });

  it('downloads again a cached file that is not valid gzip, and keeps one stored uncompressed with the right content', async () => {
    const server = await start(serveReal);
    await ensureDataset('mnist', opts(server.base));
    const broken = join(cacheDir, 'mnist', 'train-labels-idx1-ubyte.gz');
    await writeFile(broken, Uint8Array.of(0x1f, 0x8b, 8, 0, 1, 2, 3)); // gzip magic, then garbage
    const plain = join(cacheDir, 'mnist', 't10k-labels-idx1-ubyte.gz');
    await writeFile(plain, gunzipSync(realFile('t10k-labels-idx1-ubyte.gz')));
    const before = server.requests.length;
    await ensureDataset('mnist', opts(server.base));
    expect(server.requests.slice(before)).toEqual(['/mnist/train-labels-idx1-ubyte.gz']);
    expect((await readFile(broken)).equals(realFile('train-labels-idx1-ubyte.gz'))).toBe(true);
  });

  it('retries after an HTTP 500 and then succeeds', async () => {
    const server = await start((req, res, nth) => (nth === 1 ? res.writeHead(500).end() : serveReal(req, res, nth)));
    await ensureDataset('mnist', opts(server.base));
    expect(server.requests.filter((u) => u === '/mnist/train-images-idx3-ubyte.gz')).toHaveLength(2);
    expect(await filesUnder(cacheDir)).toEqual(GZ_NAMES);
  });

  it('moves on to the next mirror after a 404 without retrying it', async () => {
    const server = await start((req, res, nth) => (req.url?.startsWith('/broken/') ? res.writeHead(404).end() : serveReal(req, res, nth)));
    const broken = server.base.replace('/mnist/', '/broken/');
    await ensureDataset('mnist', { ...opts(server.base), mirrors: [broken, server.base], retries: 3 });
    expect(server.requests.filter((u) => u === '/broken/train-images-idx3-ubyte.gz')).toHaveLength(1);
    expect(await filesUnder(cacheDir)).toEqual(GZ_NAMES);
  });

  it('stores an uncompressed response gzipped', async () => {
    const server = await start((req, res, nth) => {
      const name = (req.url ?? '').replace(/^\/mnist\//, '');
      const body = gunzipSync(realFile(name));
      res.writeHead(200, { 'content-length': body.length }).end(body);
      void nth;
    });
    await ensureDataset('mnist', opts(server.base));
    const stored = await readFile(join(cacheDir, 'mnist', 'train-labels-idx1-ubyte.gz'));
    expect(sha256Hex(gunzipSync(stored))).toBe(getDatasetInfo('mnist').trainLabels.sha256);
  });

  it('fails with both hashes and leaves no file when a mirror serves the wrong content', async () => {
    const wrong = gzip(makeIdxImages(2, 28, 28));
    const server = await start((_req, res) => res.writeHead(200, { 'content-length': wrong.length }).end(wrong));
    const err = await ensureDataset('mnist', opts(server.base)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DownloadError);
    const message = (err as Error).message;
    expect(message).toContain('mnist/train-images-idx3-ubyte.gz');
    expect(message).toContain(getDatasetInfo('mnist').trainImages.sha256);
    expect(message).toContain(sha256Hex(makeIdxImages(2, 28, 28)));
    expect(message).not.toContain('\n');
    expect(server.requests).toHaveLength(1); // wrong content is not retried on the same mirror
    expect(await filesUnder(cacheDir)).toEqual([]);
  });

  it('leaves no half-written file when the connection drops mid-body', async () => {
    const server = await start((req, res) => {
      const body = realFile('train-images-idx3-ubyte.gz');
      res.writeHead(200, { 'content-length': body.length });
      res.write(body.subarray(0, body.length >> 1), () => req.socket.destroy());
    });
    const err = await ensureDataset('mnist', opts(server.base)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DownloadError);
    expect((err as Error).message).toContain('could not download from any mirror');
    expect(server.requests).toHaveLength(2); // one retry
    expect(await filesUnder(cacheDir)).toEqual([]);
  });

  it('gives up on a connection that stalls longer than idleTimeoutMs', async () => {
    const server = await start((_req, res) => {
      res.writeHead(200, { 'content-length': 1000 });
      res.write(Buffer.alloc(10));
    });
    const began = Date.now();
    const err = await ensureDataset('mnist', opts(server.base, { retries: 0, idleTimeoutMs: 200 })).catch((e: unknown) => e);
    expect((err as Error).message).toContain('no data for 200 ms');
    expect(Date.now() - began).toBeLessThan(5000);
    expect(await filesUnder(cacheDir)).toEqual([]);
  });

  it('keeps an existing verified file in place when replacing fails', async () => {
    await mkdir(join(cacheDir, 'mnist'), { recursive: true });
    const path = join(cacheDir, 'mnist', 'train-images-idx3-ubyte.gz');
    await writeFile(path, realFile('train-images-idx3-ubyte.gz'));
    const server = await start((_req, res) => res.writeHead(503).end());
    await expect(ensureDataset('mnist', opts(server.base))).rejects.toThrow(/train-labels-idx1-ubyte\.gz.*HTTP 503/);
    expect((await stat(path)).size).toBe(realFile('train-images-idx3-ubyte.gz').length);
    expect(await filesUnder(cacheDir)).toEqual(['train-images-idx3-ubyte.gz']);
  });
});
