import type { FlagSpecs, ParsedFlags } from './flags.js';
import type { OutputStream } from './progress.js';

/** Where a command writes: stdout for results, stderr for progress and errors. */
export interface CommandIo {
  stdout: OutputStream;
  stderr: OutputStream;
}

/** A `gradq` subcommand: its flags (parsed and checked before `run`) and what it does. */
export interface Command {
  summary: string;
  usage: string;
  flags: FlagSpecs;
  run(flags: ParsedFlags, io: CommandIo): Promise<void>;
}
