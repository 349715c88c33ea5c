/**
 * Whether a process with this pid is running (on this machine, in this PID namespace): signal 0 checks without
 * signalling. EPERM means it runs as another user, which is running too.
 */
export function processRuns(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
