import { formatFlags, parseFlags, UsageError, type Command, type CommandIo } from '@gradq/cli';
import { ConfigError } from '@gradq/nn';
import { DataError } from '@gradq/data';
import { evalCommand } from './commands/eval-command.js';
import { trainCommand } from './commands/train-command.js';

export const COMMANDS: Record<string, Command> = {
  train: trainCommand,
  eval: evalCommand,
};

/** `gradq --help`: every command with its flags. */
export function helpText(commands: Record<string, Command> = COMMANDS): string {
  const parts = ['gradq: data-parallel training of a from-scratch neural network over BullMQ and Redis', '', 'Commands:'];
  for (const [name, c] of Object.entries(commands)) parts.push(`  ${name.padEnd(8)} ${c.summary}`);
  for (const c of Object.values(commands)) parts.push('', `${c.usage}`, formatFlags(c.flags));
  parts.push('', 'Exit codes: 0 success, 2 bad input (flags, files, data), 1 anything else.');
  return `${parts.join('\n')}\n`;
}

/**
 * Runs `gradq ARGS…` and returns the exit code: 2 for bad input (one line on stderr), 1 for anything else.
 * `commands` lets the bin add commands of other apps (the worker) without this app importing them.
 */
export async function main(args: readonly string[], io: CommandIo, commands: Record<string, Command> = COMMANDS): Promise<number> {
  const [name, ...rest] = args;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    io.stdout.write(helpText(commands));
    return name === undefined ? 2 : 0;
  }
  try {
    const command = commands[name];
    if (!command) throw new UsageError(`unknown command "${name}" (use ${Object.keys(commands).join(', ')}; see gradq --help)`);
    if (rest.includes('--help') || rest.includes('-h')) {
      io.stdout.write(`${command.usage}\n${command.summary}\n\n${formatFlags(command.flags)}\n`);
      return 0;
    }
    await command.run(parseFlags(name, rest, command.flags), io);
    return 0;
  } catch (e) {
    if (e instanceof UsageError || e instanceof ConfigError || e instanceof DataError) {
      io.stderr.write(`gradq: error: ${e.message}\n`);
      return 2;
    }
    io.stderr.write(`gradq: internal error: ${(e as Error).stack ?? String(e)}\n`);
    return 1;
  }
}
