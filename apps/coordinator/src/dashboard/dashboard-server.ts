import type { Server, ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { ExpressAdapter } from '@bull-board/express';
import type { Queue } from 'bullmq';
import express, { type NextFunction, type Request, type Response } from 'express';
import { addressUrl, type ListenAddress } from './listen-address.js';
import { runMetrics } from './run-metrics.js';
import type { RunState } from './run-state.js';

/** The page, its script and styles: files of this package (never a CDN). */
export const ASSETS_DIR = fileURLToPath(new URL('../../dashboard/', import.meta.url));
/** uPlot's browser build, served from its package. */
const UPLOT_DIR = join(dirname(createRequire(import.meta.url).resolve('uplot/package.json')), 'dist');
/** Pushes to the page at most this often (10 per second), and only when something changed. */
export const PUSH_MS = 100;
/** Workers' states and "last seen" move with time: push at least this often. */
const IDLE_PUSH_MS = 1000;
/** Host headers a server on a loopback address answers: a name that resolves elsewhere is refused (DNS rebinding). */
const LOOPBACK_HOST = /^(localhost|127(\.\d{1,3}){3}|\[::1\])(:\d{1,5})?$/i;

/** A page that reads slower than this many bytes behind is dropped (it reconnects and gets a snapshot). */
const MAX_BACKLOG = 8 * 1024 * 1024;

export interface DashboardOptions {
  state: RunState;
  /** The run's queue, for Bull Board at /queues (read-only) and the queue depths in /metrics. */
  queue?: Queue;
  /**
   * Bull Board may act on the queue's jobs (retry, promote, remove, clean, pause). Harmless to the run's bits: the
   * coordinator recomputes a shard whose job is gone and keeps the first valid result of one run twice.
   */
  queueActions?: boolean;
  /** A folder served at /report/ (gradq eval --report), linked from the page. */
  reportDir?: string;
}

/**
 * A request that may change something (not GET or HEAD) must come from a page of this server: a browser names the
 * page's origin in Origin on every such request, so another site's page (or a form posted from it) cannot act on
 * the queue through a browser that can reach the dashboard.
 */
function sameOriginWrites(req: Request, res: Response, next: NextFunction): void {
  if (req.method === 'GET' || req.method === 'HEAD') return next();
  const origin = req.headers.origin;
  if (origin !== undefined && origin === `${req.protocol}://${req.headers.host ?? ''}`) return next();
  res
    .status(403)
    .type('text')
    .send(`refused: a ${req.method} to /queues must come from this dashboard's own page (Origin ${origin ?? 'missing'})\n`);
}

interface EventClient {
  res: ServerResponse;
  steps: number;
  epochs: number;
  version: number;
  pushedAt: number;
}

/**
 * The dashboard's HTTP server: the live page (/), its data (/api/run, and /api/events as server-sent events),
 * Prometheus metrics (/metrics), Bull Board (/queues, read-only). Static files come from ASSETS_DIR and uPlot's
 * package only, through express.static, which refuses paths that leave its folder (`..`, encoded or not).
 * No CORS headers: other origins cannot read anything.
 */
export class DashboardServer {
  private readonly clients = new Set<EventClient>();
  private readonly timer: NodeJS.Timeout;

  private constructor(
    private readonly server: Server,
    readonly url: string,
    private readonly state: RunState,
  ) {
    this.timer = setInterval(() => this.push(), PUSH_MS);
    this.timer.unref();
  }

  static async start(address: ListenAddress, o: DashboardOptions): Promise<DashboardServer> {
    const app = express();
    app.disable('x-powered-by');
    app.set('etag', false);
    // On a loopback address, only requests that name it: another site's page whose name was made to point at
    // 127.0.0.1 (DNS rebinding) gets nothing.
    if (LOOPBACK_HOST.test(address.host) || address.host === '::1') {
      app.use((req: Request, res: Response, next: NextFunction) => {
        if (LOOPBACK_HOST.test(req.headers.host ?? '')) next();
        else res.status(403).type('text').send('this dashboard answers to localhost or 127.0.0.1 only\n');
      });
    }
    const page = (_req: Request, res: Response, next: NextFunction): void => {
      res.set({
        'X-Content-Type-Options': 'nosniff',
        'Referrer-Policy': 'no-referrer',
        'X-Frame-Options': 'DENY',
        'Content-Security-Policy': "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'",
      });
      next();
    };
    const files = { index: false, dotfiles: 'deny', fallthrough: false, redirect: false } as const;
    app.get('/', page, (_req, res) => res.sendFile('index.html', { root: ASSETS_DIR }));
    app.use('/assets/uplot', page, express.static(UPLOT_DIR, files));
    app.use('/assets', page, express.static(ASSETS_DIR, files));
    if (o.reportDir !== undefined) app.use('/report', page, express.static(o.reportDir, { ...files, index: 'index.html' }));
    app.get('/api/run', page, (_req, res) => void res.json({ ...o.state.snapshot(), report: o.reportDir !== undefined }));
    const events: { server?: DashboardServer } = {}; // set once listening
    app.get('/api/events', page, (req, res) => events.server?.subscribe(req, res));
    const queue = o.queue;
    const registry = runMetrics(o.state, queue ? () => queue.getJobCounts() : undefined);
    app.get('/metrics', (_req, res, next) => {
      registry.metrics().then((text) => void res.type(registry.contentType).send(text), next);
    });
    if (o.queue) {
      const board = new ExpressAdapter();
      board.setBasePath('/queues');
      createBullBoard({ queues: [new BullMQAdapter(o.queue, { readOnlyMode: !o.queueActions })], serverAdapter: board });
      app.use('/queues', sameOriginWrites, board.getRouter());
    } else {
      app.get('/queues', (_req, res) => void res.status(404).type('text').send('no queue: this run trains in one process (--local)\n'));
    }
    app.use((_req: Request, res: Response) => void res.status(404).type('text').send('not found\n'));
    // A refused static path (403 for `..`, 404 for a missing file) answers with its status and no stack.
    app.use((err: { status?: number; statusCode?: number }, _req: Request, res: Response, _next: NextFunction) => {
      const status = err.status ?? err.statusCode ?? 500;
      res
        .status(status)
        .type('text')
        .send(status === 404 ? 'not found\n' : status === 403 ? 'forbidden\n' : 'error\n');
    });
    const http = await new Promise<Server>((resolve, reject) => {
      const s = app.listen(address.port, address.host, (e?: Error) => (e ? reject(e) : resolve(s)));
      s.once('error', reject);
    });
    const bound = http.address();
    const port = typeof bound === 'object' && bound !== null ? bound.port : address.port;
    events.server = new DashboardServer(http, addressUrl(address.host, port), o.state);
    return events.server;
  }

  private subscribe(req: Request, res: Response): void {
    res.writeHead(200, {
      'Content-Type': 'text/event-stream',
      'Cache-Control': 'no-cache',
      Connection: 'keep-alive',
      'X-Accel-Buffering': 'no',
    });
    const snapshot = this.state.snapshot();
    const client: EventClient = {
      res,
      steps: snapshot.steps.length,
      epochs: snapshot.epochs.length,
      version: this.state.version,
      pushedAt: Date.now(),
    };
    res.write(`event: snapshot\ndata: ${JSON.stringify(snapshot)}\n\n`);
    this.clients.add(client);
    req.on('close', () => this.clients.delete(client));
  }

  /** Sends each page what it has not seen: new step and epoch rows, the workers and counters as they are now. */
  private push(): void {
    if (this.clients.size === 0) return;
    const now = Date.now();
    const s = this.state;
    let live: ReturnType<RunState['live']> | undefined;
    for (const c of this.clients) {
      if (c.version === s.version && now - c.pushedAt < IDLE_PUSH_MS) continue;
      if (c.res.writableLength > MAX_BACKLOG) {
        c.res.destroy();
        this.clients.delete(c);
        continue;
      }
      live ??= s.live();
      const delta = { status: s.status, steps: s.steps.slice(c.steps), epochs: s.epochs.slice(c.epochs), ...live };
      c.res.write(`event: delta\ndata: ${JSON.stringify(delta)}\n\n`);
      c.steps = s.steps.length;
      c.epochs = s.epochs.length;
      c.version = s.version;
      c.pushedAt = now;
    }
  }

  /** Sends the last changes, ends the event streams and closes the server and its connections. */
  async close(): Promise<void> {
    clearInterval(this.timer);
    this.push();
    for (const c of this.clients) c.res.end();
    this.clients.clear();
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }
}
