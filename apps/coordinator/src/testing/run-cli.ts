import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { expect } from 'vitest';
import { GRADQ_BIN } from '../gradq-bin.js';

/** The shared datasets beside the repository. */
export const SHARED_DATA = fileURLToPath(new URL('../../../../../shared/data', import.meta.url));

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the compiled `gradq ARGS…` (tests depend on the build, as `nx test` does) and collects its output. */
export function runCli(args: readonly string[]): Promise<CliResult> {
  return spawnCli(args).done;
}

/** The JSON object on the last line of stdout. */
export function lastJson(stdout: string): Record<string, unknown> {
  const lines = stdout.trim().split('\n');
  return JSON.parse(lines[lines.length - 1]) as Record<string, unknown>;
}

/** Children of spawnCli that have not exited yet: a failed test must not leave workers running. */
const running = new Set<ChildProcess>();

/** Starts `gradq ARGS…` and returns the child (for tests that kill it) with its collected output. */
export function spawnCli(args: readonly string[], env: NodeJS.ProcessEnv = {}): { child: ChildProcess; done: Promise<CliResult> } {
  const child = spawn(process.execPath, [GRADQ_BIN, ...args], { env: { ...process.env, ...env } });
  running.add(child);
  child.on('exit', () => running.delete(child));
  return { child, done: collectOutput(child) };
}

/** The exit code and the whole output of `child`, once it has closed. */
export function collectOutput(child: ChildProcess): Promise<CliResult> {
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise<CliResult>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** SIGKILLs every child of spawnCli still running (call in afterAll: a test that failed half-way leaves them). */
export function killLeftoverChildren(): void {
  for (const child of running) child.kill('SIGKILL');
  running.clear();
}

/** Polls `check` every 50 ms until it returns true, or fails after `timeoutMs` saying what it waited for. */
export async function waitFor(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const start = Date.now();
  while (!(await check())) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Runs `gradq ARGS… --out OUT` that must fail on input: exit 2, one `gradq: error:` line matching `pattern`, no OUT. */
export async function expectInputError(args: readonly string[], pattern: RegExp, out: string): Promise<void> {
  const r = await runCli([...args, '--out', out]);
  expect(r.code, r.stderr).toBe(2);
  const lines = r.stderr.trim().split('\n');
  expect(lines, r.stderr).toHaveLength(1);
  expect(lines[0]).toMatch(/^gradq: error: /);
  expect(lines[0]).toMatch(pattern);
  expect(existsSync(out)).toBe(false);
}
