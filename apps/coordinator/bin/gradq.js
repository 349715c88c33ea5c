#!/usr/bin/env node
// The `gradq` command: the composition root. It runs the compiled coordinator (built by `npm ci` or
// `npm run build`) and adds the worker's command, so that neither app imports the other.
import { COMMANDS, main } from '../dist/main.js';
import { workerCommand } from '@gradq/worker';

const code = await main(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr }, { ...COMMANDS, worker: workerCommand });
process.exitCode = code;
