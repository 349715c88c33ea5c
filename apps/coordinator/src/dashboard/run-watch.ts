import { redactRedisUrl } from '@gradq/cluster';
import type { TrainConfig, TrainObserver } from '@gradq/train';
import type { ClusterRun } from '../cluster/cluster-run.js';
import { DashboardServer } from './dashboard-server.js';
import type { ListenAddress } from './listen-address.js';
import { MetricsLog } from './metrics-log.js';
import { RunState, type RunInfo } from './run-state.js';

export interface RunWatchOptions {
  config: TrainConfig;
  totalSteps: number;
  /** The cluster run, if not --local. */
  cluster?: ClusterRun;
  queue?: string;
  workers?: number;
  dashboard?: ListenAddress;
  /** Bull Board may act on the queue's jobs (--dashboard-actions); read-only otherwise. */
  queueActions?: boolean;
  logDir?: string;
  log: (line: string) => void;
}

/**
 * What watches a training run: the RunState fed by the trainer and the cluster source, the dashboard server
 * (--dashboard) and the metrics log (--log-dir). Without either it holds nothing and observes nothing.
 */
export class RunWatch {
  private constructor(
    readonly state: RunState | undefined,
    readonly server: DashboardServer | undefined,
    private readonly metricsLog: MetricsLog | undefined,
  ) {}

  static async start(o: RunWatchOptions): Promise<RunWatch> {
    if (o.dashboard === undefined && o.logDir === undefined) return new RunWatch(undefined, undefined, undefined);
    const c = o.cluster;
    const info: RunInfo = { mode: c ? 'cluster' : 'local', totalSteps: o.totalSteps, config: runConfig(o) };
    const state = new RunState(info, c && { counters: c.source.counters, connected: () => c.connected });
    c?.source.observe(state);
    const metricsLog = o.logDir === undefined ? undefined : new MetricsLog(o.logDir, state, o.config.resume);
    let server: DashboardServer | undefined;
    if (o.dashboard) {
      server = await DashboardServer.start(o.dashboard, { state, queue: c?.queue, queueActions: o.queueActions });
      o.log(`dashboard at ${server.url} (metrics at ${server.url}metrics${c ? `, queues at ${server.url}queues` : ''})`);
    }
    return new RunWatch(state, server, metricsLog);
  }

  /** The trainer's observers. */
  get observers(): TrainObserver[] {
    return this.state ? [this.state] : [];
  }

  /** Marks the run finished or failed, writes the log's last line and closes it; the server stays up. */
  async finish(ok: boolean): Promise<void> {
    this.state?.finish(ok ? 'finished' : 'failed');
    if (this.state && this.metricsLog) await this.metricsLog.close(this.state);
  }

  async close(): Promise<void> {
    await this.server?.close();
  }
}

/** The run's settings as the page shows them: the training config, and for a cluster where it runs (no secret). */
function runConfig(o: RunWatchOptions): RunInfo['config'] {
  const config: RunInfo['config'] = {};
  for (const [k, v] of Object.entries(o.config)) {
    if (v === undefined || k === 'resume') continue;
    config[k] = typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean' ? v : String(v);
  }
  if (o.cluster) {
    config.queue = o.queue ?? null;
    config.redis = redactRedisUrl(o.cluster.url);
    config.localWorkers = o.workers ?? null;
  }
  return config;
}
