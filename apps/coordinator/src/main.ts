import { flagOf, formatFlags, InputError, parseCommandLine, UsageError, type Command, type CommandIo } from '@gradq/cli';
import { DivergedError, RunStoppedError } from '@gradq/train';
import { InterruptedError } from './cluster/interrupted-error.js';
import { signalExitCode } from './cluster/stop-signals.js';
import { dashboardCommand } from './commands/dashboard-command.js';
import { evalCommand } from './commands/eval-command.js';
import { predictCommand } from './commands/predict-command.js';
import { trainCommand } from './commands/train-command.js';

/**
 * Exit codes: success, anything unexpected, bad input, a run that diverged, a cluster run that gave up waiting
 * for workers. A cluster run stopped by SIGINT or SIGTERM exits with 130 or 143 (signalExitCode).
 */
export const EXIT = { ok: 0, internal: 1, input: 2, diverged: 3, gaveUp: 4 } as const;

export const COMMANDS: Record<string, Command> = {
  train: trainCommand,
  eval: evalCommand,
  predict: predictCommand,
  dashboard: dashboardCommand,
};

/** `gradq --help`: every command with its flags. */
export function helpText(commands: Record<string, Command> = COMMANDS): string {
  const parts = ['gradq: data-parallel training of a from-scratch neural network over BullMQ and Redis', '', 'Commands:'];
  for (const [name, c] of Object.entries(commands)) parts.push(`  ${name.padEnd(8)} ${c.summary}`);
  for (const c of Object.values(commands)) parts.push('', `${c.usage}`, formatFlags(c.flags));
  parts.push(
    '',
    'Exit codes: 0 success, 2 bad input (flags, files, data), 3 training diverged, 4 no worker to compute the shards,',
    '130/143 interrupted (SIGINT/SIGTERM), 1 anything else.',
  );
  return `${parts.join('\n')}\n`;
}

/**
 * Runs `gradq ARGS…` and returns the exit code (EXIT): 2 for bad input, 3 for a diverged run, 4 or 130/143 for a
 * run stopped between steps (one line on stderr each), 1 for anything else (with the stack).
 * `commands` lets the bin add commands of other apps (the worker) without this app importing them.
 */
export async function main(args: readonly string[], io: CommandIo, commands: Record<string, Command> = COMMANDS): Promise<number> {
  const [name, ...rest] = args;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    io.stdout.write(helpText(commands));
    return name === undefined ? EXIT.input : EXIT.ok;
  }
  try {
    const command = Object.hasOwn(commands, name) ? commands[name] : undefined;
    if (!command) throw new UsageError(`unknown command "${name}" (use ${Object.keys(commands).join(', ')}; see gradq --help)`);
    if (rest.includes('--help') || rest.includes('-h')) {
      io.stdout.write(`${command.usage}\n${command.summary}\n\n${formatFlags(command.flags)}\n`);
      return EXIT.ok;
    }
    const { flags, operands } = parseCommandLine(name, rest, command.flags, { operands: command.operands });
    await command.run(flags, io, operands);
    return EXIT.ok;
  } catch (e) {
    if (e instanceof InputError) {
      io.stderr.write(`gradq: error: ${inputErrorText(e, commands[name])}\n`);
      return EXIT.input;
    }
    if (e instanceof DivergedError) {
      io.stderr.write(`gradq: ${e.message}\n`);
      return EXIT.diverged;
    }
    if (e instanceof RunStoppedError) {
      io.stderr.write(`gradq: ${stoppedText(e)}\n`);
      return e instanceof InterruptedError ? signalExitCode(e.signal) : EXIT.gaveUp;
    }
    io.stderr.write(`gradq: internal error: ${(e as Error).stack ?? String(e)}\n`);
    return EXIT.internal;
  }
}

/**
 * A library's InputError in command-line terms: where it names the setting its value came from (`about`) and the
 * command has that flag, the message is led by the flag (`--train-samples: …`).
 */
function inputErrorText(e: InputError, command: Command | undefined): string {
  if (e instanceof UsageError || e.about === undefined || command === undefined) return e.message;
  const flag = flagOf(e.about);
  return Object.hasOwn(command.flags, flag.slice(2)) ? `${flag}: ${e.message}` : e.message;
}

/** A stopped run's line: why, and where its steps were kept. */
function stoppedText(e: RunStoppedError): string {
  const saved = e.savedAt;
  if (saved) return `${e.message}; checkpoint written to ${saved.file}: the same command with --resume continues at step ${saved.nextStep}`;
  if (e.lastCheckpoint !== undefined) {
    return `${e.message}; no checkpoint written now (the shards’ residuals are unreadable): the same command with --resume continues from the last one in ${e.lastCheckpoint}`;
  }
  return `${e.message}; no --checkpoint, so the steps done are not kept`;
}
