import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, rename, rm, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip, gzipSync } from 'node:zlib';
import { datasetFilePath, defaultCacheDir } from './cache.js';
import { DataError } from './data-error.js';
import { DownloadError } from './download-error.js';
import { decompressIdx, isGzip } from './idx.js';
import { datasetFiles, getDatasetInfo, type DatasetFile } from './registry.js';
import { verifySha256 } from './sha256.js';

/** Called while a file downloads; a last call has received === total when the file is complete. */
export type ProgressReporter = (file: string, received: number, total: number | undefined) => void;

export interface EnsureDatasetOptions {
  /** Cache root; default defaultCacheDir(). Files go to `<cacheDir>/<dataset>/<file>.gz`. */
  cacheDir?: string;
  /** Base URLs to try in order instead of the registry's (tests). */
  mirrors?: readonly string[];
  /** Extra attempts per mirror after a network error or HTTP 5xx/408/429; default 3. */
  retries?: number;
  /** Wait before the first retry, doubled for each further one; default 1000 ms. */
  retryDelayMs?: number;
  /** Abort an attempt when no bytes arrive for this long; default 30000 ms. */
  idleTimeoutMs?: number;
  fetchImpl?: typeof fetch;
  progress?: ProgressReporter;
}

/**
 * Makes sure the four files of dataset `name` are in the cache with the registry's content hashes,
 * downloading each missing or corrupt one; returns the cache root. A file appears in the cache only
 * complete and verified: it is written to a unique `.part-*` file, checked, then renamed into place.
 */
export async function ensureDataset(name: string, options: EnsureDatasetOptions = {}): Promise<string> {
  const info = getDatasetInfo(name);
  const cacheDir = options.cacheDir ?? defaultCacheDir();
  const mirrors = options.mirrors ?? info.mirrors;
  const retries = options.retries ?? 3;
  if (!Number.isInteger(retries) || retries < 0) throw new RangeError(`Invalid retries: ${retries} (use a whole number >= 0)`);
  if (mirrors.length === 0) throw new RangeError(`No mirrors given for ${name}`);
  for (const file of datasetFiles(info)) {
    const dest = datasetFilePath(cacheDir, info.name, file.name);
    if (await isVerified(dest, file)) continue;
    await downloadFile(`${info.name}/${file.name}.gz`, file, dest, mirrors, retries, options);
  }
  return cacheDir;
}

/**
 * Whether the cached file holds the registry's content. Its decompressed bytes are hashed as they stream, never
 * held whole: a worker or coordinator would otherwise decompress each file twice at start (here and to load it),
 * its peak memory holding both copies of the 47 MB training images.
 */
async function isVerified(path: string, file: DatasetFile): Promise<boolean> {
  let found: string;
  try {
    found = await contentSha256(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return false;
    if (typeof code === 'string' && code.startsWith('Z_')) return false; // not valid gzip: download it again
    throw err;
  }
  return found === file.sha256; // else corrupt: download it again
}

/** SHA-256 of a file's content, gunzipped as it streams when the file is gzip. */
async function contentSha256(path: string): Promise<string> {
  const magic = new Uint8Array(2);
  const handle = await open(path);
  try {
    await handle.read(magic, 0, 2, 0);
  } finally {
    await handle.close();
  }
  const hash = createHash('sha256');
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      hash.update(chunk);
      done();
    },
  });
  const source = createReadStream(path);
  await (isGzip(magic) ? pipeline(source, createGunzip(), sink) : pipeline(source, sink));
  return hash.digest('hex');
}

async function downloadFile(
  label: string,
  file: DatasetFile,
  dest: string,
  mirrors: readonly string[],
  retries: number,
  options: EnsureDatasetOptions,
): Promise<void> {
  const retryDelayMs = options.retryDelayMs ?? 1000;
  const failures: string[] = [];
  for (const base of mirrors) {
    const url = new URL(`${file.name}.gz`, base).href;
    let reason = '';
    for (let attempt = 0; attempt <= retries; attempt++) {
      if (attempt > 0) await sleep(retryDelayMs * 2 ** (attempt - 1));
      try {
        await fetchToFile(url, label, file, dest, options);
        return;
      } catch (err) {
        reason = err instanceof Error ? err.message : String(err);
        if (!isTransient(err)) break; // wrong content or 404: the same mirror will not do better
      }
    }
    failures.push(`${url}: ${reason}`);
  }
  throw new DownloadError(
    `${label}: could not download from any mirror (${failures.join('; ')}); check the network, or give a data root: a folder that holds ${label.split('/')[0]}/`,
    { about: 'dataDir' },
  );
}

class HttpStatusError extends Error {
  constructor(readonly status: number) {
    super(`HTTP ${status}`);
  }
}

function isTransient(err: unknown): boolean {
  if (err instanceof DataError) return false;
  if (err instanceof HttpStatusError) return err.status >= 500 || err.status === 408 || err.status === 429;
  return true;
}

/** One attempt: stream `url` to a unique part file, verify its decompressed SHA-256, rename it to `dest`. */
async function fetchToFile(url: string, label: string, file: DatasetFile, dest: string, options: EnsureDatasetOptions): Promise<void> {
  const fetchImpl = options.fetchImpl ?? globalThis.fetch;
  const controller = new AbortController();
  const idleMs = options.idleTimeoutMs ?? 30_000;
  const timer = setTimeout(() => controller.abort(new Error(`no data for ${idleMs} ms`)), idleMs);
  await mkdir(dirname(dest), { recursive: true });
  const part = `${dest}.part-${process.pid}-${randomBytes(6).toString('hex')}`;
  let renamed = false;
  try {
    const res = await fetchImpl(url, { signal: controller.signal });
    if (!res.ok) throw new HttpStatusError(res.status);
    if (res.body === null) throw new Error('response has no body');
    const lengthHeader = res.headers.get('content-length');
    // With a Content-Encoding, fetch decodes the body and Content-Length counts the encoded bytes.
    const total = lengthHeader !== null && res.headers.get('content-encoding') === null ? Number(lengthHeader) : undefined;
    const chunks: Uint8Array[] = [];
    let received = 0;
    const fh = await open(part, 'wx');
    try {
      for await (const chunk of res.body) {
        timer.refresh();
        await fh.write(chunk);
        chunks.push(chunk);
        received += chunk.length;
        options.progress?.(label, received, total);
      }
      await fh.sync();
    } finally {
      await fh.close();
    }
    if (total !== undefined && received !== total) {
      throw new Error(`connection closed after ${received} of ${total} bytes`);
    }
    const body = Buffer.concat(chunks);
    if (isGzip(body)) {
      verifySha256(decompressIdx(body, label), file.sha256, label);
    } else {
      // Served (or decoded by fetch) uncompressed: verify, then store gzipped to keep the cache layout.
      verifySha256(body, file.sha256, label);
      await writeFile(part, gzipSync(body));
    }
    await rename(part, dest);
    renamed = true;
    options.progress?.(label, received, received);
  } finally {
    clearTimeout(timer);
    if (!renamed) await rm(part, { force: true });
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
