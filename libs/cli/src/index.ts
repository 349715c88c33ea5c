export { InputError } from './input-error.js';
export { UsageError } from './usage-error.js';
export {
  parseCommandLine,
  parseFlags,
  formatFlags,
  flagOf,
  type CommandLine,
  type FlagSpec,
  type FlagSpecs,
  type ParsedFlags,
} from './flags.js';
export { defineCommand, type Command, type CommandIo } from './command.js';
export { ProgressBar, transferProgress, formatCount, type OutputStream } from './progress.js';
export { processRuns } from './process-runs.js';
export { writeFileAtomic, checkWritableTarget, removeStaleTempFiles, type AtomicWriteOptions } from './atomic-write.js';
