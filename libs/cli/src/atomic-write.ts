import { closeSync, fsyncSync, openSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { UsageError } from './usage-error.js';

/** Fails early (before any work) when `file` could not be written: its folder must exist. */
export function checkWritableTarget(flag: string, file: string): void {
  const dir = dirname(resolve(file));
  let isDir = false;
  try {
    isDir = statSync(dir).isDirectory();
  } catch {
    isDir = false;
  }
  if (!isDir) throw new UsageError(`${flag} ${file}: folder ${dir} does not exist (create it first)`);
}

/** Writes `bytes` to a temporary file beside `file`, flushes it, then renames it over `file`. */
export function writeFileAtomic(file: string, bytes: Uint8Array): void {
  const tmp = `${file}.tmp-${process.pid}-${Date.now()}`;
  try {
    const fd = openSync(tmp, 'w');
    try {
      writeSync(fd, bytes);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, file);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
}
