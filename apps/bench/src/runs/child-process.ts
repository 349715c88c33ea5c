import { spawn } from 'node:child_process';
import { UsageError } from '@gradq/cli';

export interface ChildOutput {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs `command ARGS…` to the end and collects its output (a child that cannot start rejects). */
export function runChild(command: string, args: readonly string[], env: NodeJS.ProcessEnv = process.env): Promise<ChildOutput> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

/**
 * Runs `node GRADQ_BIN train ARGS… --json` (GRADQ_BIN: the path of the `gradq` bin) in a child process and
 * returns its JSON summary (the last line of stdout). A child that rejects its input (exit 2) becomes a UsageError with its one line; any other
 * failure an Error with the end of its stderr.
 */
export async function runGradqTrain(gradqBin: string, what: string, args: readonly string[]): Promise<Record<string, unknown>> {
  const r = await runChild(process.execPath, [gradqBin, 'train', ...args, '--json']);
  if (r.code === 2) {
    const line = r.stderr.trim().split('\n').pop() ?? '';
    throw new UsageError(`${what}: ${line.replace(/^gradq: error: /, '')}`);
  }
  if (r.code !== 0) {
    const tail = r.stderr.trim().split('\n').slice(-8).join('\n');
    throw new Error(`${what}: gradq train ${args.join(' ')} ${r.signal ? `was killed by ${r.signal}` : `exited with ${r.code}`}\n${tail}`);
  }
  const last = r.stdout.trim().split('\n').pop() ?? '';
  try {
    return JSON.parse(last) as Record<string, unknown>;
  } catch {
    throw new Error(`${what}: the last line of gradq train's output is not its JSON summary: ${last.slice(0, 200)}`);
  }
}
