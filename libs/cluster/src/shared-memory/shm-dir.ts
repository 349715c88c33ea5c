import { processRuns } from '@gradq/cli';
import { closeSync, lstatSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeSync, type Stats } from 'node:fs';
import { join } from 'node:path';

/** Where the coordinator makes its directory: a tmpfs on Linux, so that a file there is memory, not disk. */
export const SHM_BASE = '/dev/shm';
/** The directory's name: a fixed prefix and mkdtemp's six characters. */
const DIR_NAME = /^gradq-[A-Za-z0-9]{6}$/;
const OWNER_FILE = 'owner';

/**
 * The coordinator's shared-memory directory (`/dev/shm/gradq-XXXXXX`, mode 0700): θ and the workers' result messages
 * of a run live there as files, while Redis carries a short pointer to each (see SharedMemoryTensors). Only
 * processes of the same user on the same machine can open it, which is what makes it safe to follow a pointer
 * into it. It is removed when the run ends, and by the next coordinator of the same user when its owner died
 * without removing it (SIGKILL).
 */
export class SharedMemoryDir {
  private removed = false;
  private readonly onExit = () => this.remove(); // also when the run ends by an error; not on SIGKILL

  private constructor(readonly path: string) {
    process.once('exit', this.onExit);
  }

  /** A new directory under `base`, or undefined when `base` is not a directory this process can write to. */
  static create(base = SHM_BASE): SharedMemoryDir | undefined {
    let path: string;
    try {
      if (!lstatSync(base).isDirectory()) return undefined;
      removeStaleDirs(base);
      path = mkdtempSync(join(base, 'gradq-')); // mode 0700
    } catch {
      return undefined;
    }
    const fd = openSync(join(path, OWNER_FILE), 'wx', 0o600);
    writeSync(fd, String(process.pid));
    closeSync(fd);
    return new SharedMemoryDir(path);
  }

  /** Removes the directory and everything in it (a worker still writing there fails, and pushes through Redis). */
  remove(): void {
    if (this.removed) return;
    this.removed = true;
    process.off('exit', this.onExit);
    rmSync(this.path, { recursive: true, force: true });
  }
}

/**
 * Whether `path` (from a pointer) names a coordinator's directory that this process may read and write: the
 * right name under SHM_BASE, a real directory (not a link) owned by this user, closed to everyone else. 'absent'
 * when there is no such directory here at all (it is on another machine or in another container, or its run
 * ended), 'foreign' when it is another user's (a worker run by another user on the same machine).
 */
export function checkSharedDir(path: string, base = SHM_BASE): 'ok' | 'absent' | 'foreign' | 'refused' {
  const name = path.startsWith(`${base}/`) ? path.slice(base.length + 1) : '';
  if (!DIR_NAME.test(name)) return 'refused';
  let stats: Stats;
  try {
    stats = lstatSync(path);
  } catch {
    return 'absent';
  }
  const uid = process.getuid?.();
  if (!stats.isDirectory() || (stats.mode & 0o077) !== 0) return 'refused';
  return uid !== undefined && stats.uid !== uid ? 'foreign' : 'ok';
}

/** Removes this user's directories under `base` whose owner process is gone. */
function removeStaleDirs(base: string): void {
  for (const name of readdirSync(base)) {
    const path = join(base, name);
    if (!DIR_NAME.test(name) || checkSharedDir(path, base) !== 'ok') continue;
    let pid: number;
    try {
      pid = Number(readFileSync(join(path, OWNER_FILE), 'utf8'));
    } catch {
      continue; // being made right now, or not ours to judge
    }
    if (Number.isInteger(pid) && pid > 0 && !processRuns(pid)) rmSync(path, { recursive: true, force: true });
  }
}
