import { accessSync, closeSync, constants, fsyncSync, openSync, readdirSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { UsageError } from './usage-error.js';

/**
 * Fails early (before any work) when `file` could not be written: its folder must exist and be writable, and the
 * file itself must not be a folder.
 */
export function checkWritableTarget(flag: string, file: string): void {
  const path = resolve(file);
  const dir = dirname(path);
  let isDir = false;
  try {
    isDir = statSync(dir).isDirectory();
  } catch {
    isDir = false;
  }
  if (!isDir) throw new UsageError(`${flag} ${file}: folder ${dir} does not exist (create it first)`);
  let target;
  try {
    target = statSync(path);
  } catch {
    target = undefined;
  }
  if (target?.isDirectory()) throw new UsageError(`${flag} ${file}: is a folder (name a file in it, e.g. ${join(file, 'model.gradq')})`);
  try {
    accessSync(dir, constants.W_OK);
  } catch {
    throw new UsageError(`${flag} ${file}: folder ${dir} is not writable by this user (uid ${process.getuid?.() ?? '?'})`);
  }
}

/**
 * Removes the temporary files that writeFileAtomic leaves beside `file` when its process is killed mid-write
 * (`<file>.tmp-<pid>-<ms>`), except those of processes still running. A file named with this process's own pid is
 * stale when it was written before this process started (in a container every start is PID 1). Returns the names
 * removed.
 */
export function removeStaleTempFiles(file: string): string[] {
  const dir = dirname(resolve(file));
  const prefix = `${basename(file)}.tmp-`;
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const name of names) {
    const m = name.startsWith(prefix) ? /^(\d+)-(\d+)$/.exec(name.slice(prefix.length)) : null;
    if (!m) continue;
    const pid = Number(m[1]);
    if (pid === process.pid ? Number(m[2]) >= STARTED_MS : processRuns(pid)) continue;
    rmSync(join(dir, name), { force: true });
    removed.push(name);
  }
  return removed;
}

/** When this process started, in ms since the epoch (what writeFileAtomic puts in a temp file's name). */
const STARTED_MS = Date.now() - performance.now();

function processRuns(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
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
