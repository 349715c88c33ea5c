import { processRuns } from './process-runs.js';
import {
  accessSync,
  closeSync,
  constants,
  copyFileSync,
  fsyncSync,
  linkSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeSync,
} from 'node:fs';
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

/** What writeFileAtomic does besides writing. */
export interface AtomicWriteOptions {
  /**
   * Called with the bytes read back from the temporary file once it is flushed; a throw leaves `file` as it was
   * (and removes the temporary file), so that only a file that checks out replaces the one before it.
   */
  verify?: (written: Uint8Array) => void;
  /** Keep the file being replaced under this name (the previous good copy), replacing an older one there. */
  keepPrevious?: string;
}

/**
 * Writes `bytes` to a temporary file beside `file`, flushes it, reads it back for `verify`, then renames it over
 * `file` (keeping the file it replaces as `keepPrevious`). At no moment is `file` missing or partly written.
 */
export function writeFileAtomic(file: string, bytes: Uint8Array, options: AtomicWriteOptions = {}): void {
  const tmp = tempName(file);
  try {
    writeFlushed(tmp, bytes);
    options.verify?.(readFileSync(tmp));
    if (options.keepPrevious !== undefined) keepCopy(file, options.keepPrevious);
    renameSync(tmp, file);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
  syncFolder(dirname(resolve(file)));
}

/** The name of a temporary file beside `file` (removeStaleTempFiles knows the pattern). */
function tempName(file: string): string {
  return `${file}.tmp-${process.pid}-${Date.now()}`;
}

function writeFlushed(file: string, bytes: Uint8Array): void {
  const fd = openSync(file, 'w');
  try {
    writeSync(fd, bytes);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * Makes `copy` a complete copy of `file` (nothing when there is no `file`): a second name for it (a hard link),
 * or where links are not possible, a copy; either is put in place by a rename.
 */
function keepCopy(file: string, copy: string): void {
  const tmp = tempName(copy);
  try {
    try {
      linkSync(file, tmp);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return;
      if (!['EPERM', 'EXDEV', 'ENOTSUP', 'EOPNOTSUPP', 'EMLINK', 'ENOSYS'].includes(code ?? '')) throw e;
      copyFileSync(file, tmp);
      const fd = openSync(tmp, 'r+');
      try {
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
    }
    renameSync(tmp, copy);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
}

/** Flushes a folder's entries (the renames), where the platform allows it. */
function syncFolder(dir: string): void {
  try {
    const fd = openSync(dir, 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch {
    // Not every platform can open or flush a folder (Windows); the rename itself stands.
  }
}
