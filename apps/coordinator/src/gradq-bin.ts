import { fileURLToPath } from 'node:url';

/**
 * The `gradq` entry point of this app (src/ and dist/ both sit one folder below it): what local workers and the
 * tests start as child processes.
 */
export const GRADQ_BIN = fileURLToPath(new URL('../bin/gradq.js', import.meta.url));
