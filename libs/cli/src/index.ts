export { UsageError } from './usage-error.js';
export { parseFlags, formatFlags, type FlagSpec, type FlagSpecs, type FlagValue, type ParsedFlags } from './flags.js';
export type { Command, CommandIo } from './command.js';
export { ProgressBar, formatCount, type OutputStream } from './progress.js';
export { writeFileAtomic, checkWritableTarget } from './atomic-write.js';
