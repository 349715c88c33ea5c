import type { FlagSpecs, ParsedFlags } from './flags.js';
import type { OutputStream } from './progress.js';

/** Where a command writes: stdout for results, stderr for progress and errors. */
export interface CommandIo {
  stdout: OutputStream;
  stderr: OutputStream;
}

/**
 * A `gradq` subcommand: its flags and operands (parsed and checked before `run`, which gets the flags typed) and
 * what it does.
 */
export interface Command<S extends FlagSpecs = FlagSpecs> {
  summary: string;
  usage: string;
  flags: S;
  /** Whether it takes operands (arguments that are not flags, e.g. `gradq predict … IMAGE…`); without, they are errors. */
  operands?: boolean;
  run(flags: ParsedFlags<S>, io: CommandIo, operands: readonly string[]): Promise<void>;
}

/** A command whose `run` sees its flags typed from its specs. */
export function defineCommand<S extends FlagSpecs>(command: Command<S>): Command<S> {
  return command;
}
