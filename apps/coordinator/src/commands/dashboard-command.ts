import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { defineCommand, UsageError, type FlagSpecs } from '@gradq/cli';
import { DashboardServer } from '../dashboard/dashboard-server.js';
import { parseListenAddress } from '../dashboard/listen-address.js';
import { readMetricsLog } from '../dashboard/metrics-log.js';
import { REPORT_FILE } from '../eval/eval-report.js';
import { untilStopSignal } from '../dashboard/until-stop-signal.js';

export const DASHBOARD_FLAGS = {
  'log-dir': {
    type: 'string',
    placeholder: 'DIR',
    help: 'the --log-dir of a gradq train run (required); DIR/report/ (gradq eval --report DIR/report) is linked',
  },
  listen: { type: 'string', placeholder: '[HOST:]PORT', default: '127.0.0.1:8080', help: 'where to serve the page (port 0: any free one)' },
} satisfies FlagSpecs;

export const dashboardCommand = defineCommand({
  summary: 'serve the dashboard of a finished run from its --log-dir (no Redis needed)',
  usage: 'gradq dashboard --log-dir DIR [--listen [HOST:]PORT]',
  flags: DASHBOARD_FLAGS,
  async run(flags, io) {
    const dir = flags['log-dir'];
    if (dir === undefined) throw new UsageError('gradq dashboard: --log-dir DIR is required (the --log-dir of a gradq train run)');
    const address = parseListenAddress('listen', flags.listen);
    const state = readMetricsLog(dir);
    // gradq eval --report DIR/report: linked from the page.
    const report = join(dir, 'report');
    const server = await DashboardServer.start(address, { state, reportDir: existsSync(join(report, REPORT_FILE)) ? report : undefined });
    io.stderr.write(`dashboard of ${dir} (${state.steps.length} steps, ${state.epochs.length} epochs) at ${server.url} until Ctrl-C\n`);
    await untilStopSignal();
    await server.close();
  },
});
