import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { COMMANDS } from './main.js';

const readme = readFileSync(new URL('../../../README.md', import.meta.url), 'utf8');

describe('README.md', () => {
  it.each(Object.entries(COMMANDS))('documents every flag of gradq %s', (_name, command) => {
    for (const flag of Object.keys(command.flags)) expect(readme).toContain(`--${flag}`);
  });
  it('gives the test command that CI runs', () => {
    expect(readme).toContain('npm test');
    expect(readFileSync(new URL('../../../.ci/run', import.meta.url), 'utf8')).toMatch(/^npm test$/m);
  });
});
