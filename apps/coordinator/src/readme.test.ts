import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { runCli } from './testing/run-cli.js';

const readme = readFileSync(new URL('../../../README.md', import.meta.url), 'utf8');

/** `gradq --help` cut into one block per command: its usage line and its flag lines. */
async function helpBlocks(): Promise<Map<string, string>> {
  const help = await runCli(['--help']);
  expect(help.code, help.stderr).toBe(0);
  const blocks = new Map<string, string[]>();
  let current: string[] | undefined;
  for (const line of help.stdout.split('\n')) {
    const usage = /^gradq (\w+) /.exec(line);
    if (usage) blocks.set(usage[1], (current = [line]));
    else if (current && line.startsWith('  --')) current.push(line);
    else current = undefined;
  }
  return new Map([...blocks].map(([name, lines]) => [name, lines.join('\n')]));
}

describe('README.md', () => {
  it('shows every command’s flags exactly as gradq --help prints them (train, eval, predict, dashboard, worker, bench)', async () => {
    const blocks = await helpBlocks();
    expect([...blocks.keys()].sort()).toEqual(['bench', 'dashboard', 'eval', 'predict', 'train', 'worker']);
    for (const [name, block] of blocks) expect(readme, `the README's block for gradq ${name}`).toContain(block);
  });
  it('gives the test command that CI runs', () => {
    expect(readme).toContain('npm test');
    expect(readFileSync(new URL('../../../.ci/run', import.meta.url), 'utf8')).toMatch(/^npm test$/m);
  });
});
