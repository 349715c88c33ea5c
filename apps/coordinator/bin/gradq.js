#!/usr/bin/env node
// The `gradq` command: the composition root. It runs the compiled coordinator (built by `npm ci` or
// `npm run build`) and adds the bench's and the worker's commands, so that no app imports another. The bench
// starts its `gradq train` runs with this same bin, whose path it gets here.
import { fileURLToPath } from 'node:url';
import { COMMANDS, main } from '../dist/main.js';
import { benchCommand } from '@gradq/bench';
import { workerCommand } from '@gradq/worker';

const commands = { ...COMMANDS, bench: benchCommand(fileURLToPath(import.meta.url)), worker: workerCommand };
const code = await main(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr }, commands);
process.exitCode = code;
