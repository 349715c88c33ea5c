import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadDataset, type Dataset } from '@gradq/data';
import { LocalGradientSource, runTraining, setUpTraining, type TrainConfig, type TrainSummary } from '@gradq/train';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { metricValue, parseMetrics } from '../testing/prometheus-text.js';
import { rawGet } from '../testing/raw-http.js';
import { SHARED_DATA } from '../testing/run-cli.js';
import { ASSETS_DIR, DashboardServer } from './dashboard-server.js';
import { MetricsLog, readMetricsLog, METRICS_LOG_FILE } from './metrics-log.js';
import { RunState, type StepRow } from './run-state.js';

// 2 epochs of 1024 samples in batches of 64: 32 steps.
const CONFIG: TrainConfig = {
  dataset: 'mnist', model: 'mlp:784-16-10', init: 'he', epochs: 2, batch: 64, shards: 2, optimizer: 'adam', lr: 0.001,
  schedule: 'cosine', warmup: 0, seed: 3, trainSamples: 1024, augmentShift: 0, checkpointEvery: 1000, resume: false,
}; // prettier-ignore
const quiet = { log: () => undefined, progress: { write: () => true } };

let mnist: Dataset;
let tmp: string;
let state: RunState;
let server: DashboardServer;
let summary: TrainSummary;
beforeAll(async () => {
  mnist = await loadDataset('mnist', { dataDir: SHARED_DATA });
  tmp = mkdtempSync(join(tmpdir(), 'gradq-dashboard-'));
  const setup = setUpTraining(CONFIG, mnist);
  state = new RunState({ mode: 'local', totalSteps: setup.totalSteps, config: { model: CONFIG.model } });
  const log = new MetricsLog(tmp, state, false);
  server = await DashboardServer.start({ host: '127.0.0.1', port: 0 }, { state });
  const source = new LocalGradientSource(setup.model, setup.train, { seed: CONFIG.seed, shift: 0 });
  summary = await runTraining(setup, source, quiet, { observers: [state] });
  state.finish('finished');
  await log.close(state);
});
afterAll(async () => {
  await server?.close();
  rmSync(tmp, { recursive: true, force: true });
});

describe('DashboardServer', () => {
  it('serves the run as the trainer reported it at /api/run', async () => {
    const run = (await (await fetch(`${server.url}api/run`)).json()) as ReturnType<RunState['snapshot']>;
    expect(run.status).toBe('finished');
    expect(run.steps.map((r) => r.step)).toEqual([...Array(32).keys()]);
    // The epoch's mean loss is the sum of the steps' batch losses weighted by their samples (all 64 here).
    const second = run.steps.filter((r) => r.epoch === 1);
    expect(second.reduce((a, r) => a + r.loss * r.samples, 0) / 1024).toBeCloseTo(summary.train_loss, 10);
    expect(run.epochs.map((e) => e.testAccuracy)[1]).toBe(summary.test_accuracy);
  });

  it('serves Prometheus text whose counters match the run', async () => {
    const res = await fetch(`${server.url}metrics`);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const m = parseMetrics(await res.text());
    expect(metricValue(m, 'gradq_steps_total')).toBe(32);
    expect(metricValue(m, 'gradq_samples_total')).toBe(2048);
    expect(metricValue(m, 'gradq_epochs_total')).toBe(2);
    expect(metricValue(m, 'gradq_test_accuracy')).toBe(summary.test_accuracy);
    expect(m.get('gradq_step_duration_seconds')?.type).toBe('HISTOGRAM');
    expect(metricValue(m, 'gradq_step_duration_seconds')).toBe(32);
    const phases = m.get('gradq_step_phase_seconds_total')?.metrics.map((s) => s.labels?.phase);
    expect(phases).toEqual(['compute', 'optimizer']);
    expect(m.has('process_cpu_seconds_total')).toBe(true);
  });

  it('serves the page and its assets from the package, and refuses paths that leave the assets folder', async () => {
    const page = await rawGet(server.url, '/');
    expect(page.status).toBe(200);
    expect(page.body).toBe(readFileSync(join(ASSETS_DIR, 'index.html'), 'utf8'));
    expect(page.headers['content-security-policy']).toMatch(/default-src 'self'/);
    expect((await rawGet(server.url, '/assets/uplot/uPlot.iife.min.js')).status).toBe(200);
    expect((await rawGet(server.url, '/assets/dashboard.js')).status).toBe(200);
    for (const path of [
      '/assets/../package.json',
      '/assets/..%2fpackage.json',
      '/assets/%2e%2e/package.json',
      '/assets/%2e%2e%2fpackage.json',
      '/assets/uplot/../../package.json',
      '/assets/uplot/..%2f..%2f..%2fpackage.json',
      '/assets/%252e%252e%252fpackage.json',
      '/assets/..%5cpackage.json',
      '/assets/.%2e/.%2e/src/main.ts',
      '/assets/%00../package.json',
      '/assets//etc/passwd',
    ]) {
      // prettier-ignore
      const r = await rawGet(server.url, path);
      expect([400, 403, 404], `${path}: ${r.status}`).toContain(r.status);
      expect(r.body, path).not.toMatch(/"name"|root:|import /);
    }
  });

  it('sends no CORS headers, not even to a request from another origin', async () => {
    for (const path of ['/api/run', '/metrics', '/']) {
      const r = await rawGet(server.url, path, { Origin: 'http://evil.example' });
      expect(Object.keys(r.headers).filter((h) => h.startsWith('access-control-'))).toEqual([]);
    }
  });

  it('on a loopback address, refuses requests for another host name (DNS rebinding)', async () => {
    for (const host of ['evil.example', 'evil.example:80', '127.0.0.1.evil.example', 'localhost.evil.example']) {
      const r = await rawGet(server.url, '/api/run', { Host: host });
      expect(r.status, host).toBe(403);
      expect(r.body).not.toContain('steps');
    }
    for (const host of ['localhost', `127.0.0.1:${new URL(server.url).port}`, 'LOCALHOST:1'])
      expect((await rawGet(server.url, '/api/run', { Host: host })).status, host).toBe(200);
  });

  it('says there is no queue for an in-process run', async () => {
    const r = await rawGet(server.url, '/queues');
    expect(r.status).toBe(404);
    expect(r.body).toMatch(/--local/);
  });

  it('writes a metrics log that reads back to the same rows', () => {
    const lines = readFileSync(join(tmp, METRICS_LOG_FILE), 'utf8').trim().split('\n');
    expect(lines).toHaveLength(1 + 32 + 2 + 1);
    const back = readMetricsLog(tmp);
    expect(back.steps).toEqual(state.steps);
    expect(back.epochs).toEqual(state.epochs);
    expect(back.status).toBe('finished');
    expect(back.info.replay).toBe(true);
  });
});

describe('DashboardServer events', () => {
  it('pushes a snapshot, then new rows in at most 10 messages a second however fast steps come', async () => {
    const live = new RunState({ mode: 'local', totalSteps: 100_000, config: {} });
    const s = await DashboardServer.start({ host: '127.0.0.1', port: 0 }, { state: live });
    try {
      const controller = new AbortController();
      const res = await fetch(`${s.url}api/events`, { signal: controller.signal });
      expect(res.headers.get('content-type')).toBe('text/event-stream');
      const reader = res.body!.getReader();
      const decoder = new TextDecoder();
      let text = '';
      const row = (step: number): StepRow => ({
        step,
        epoch: 0,
        samples: 8,
        loss: 1,
        accuracy: 0.5,
        lr: 0.1,
        ms: 1,
        optimizerMs: 0.1,
        time: Date.now(),
      });
      // 2 s of steps every millisecond or so.
      let step = 0;
      const feeder = setInterval(() => {
        for (let i = 0; i < 5; i++) live.addStep(row(step++));
      }, 1);
      const start = Date.now();
      while (Date.now() - start < 2000) text += decoder.decode((await reader.read()).value, { stream: true });
      clearInterval(feeder);
      await new Promise((r) => setTimeout(r, 300));
      live.finish('finished');
      await new Promise((r) => setTimeout(r, 300));
      controller.abort();
      while (!text.includes('"status":"finished"')) {
        const { value, done } = await reader.read().catch(() => ({ value: undefined, done: true }));
        if (done) break;
        text += decoder.decode(value, { stream: true });
      }
      const events = text.split('\n\n').filter((e) => e.startsWith('event: '));
      expect(events[0]).toMatch(/^event: snapshot\n/);
      const deltas = events.slice(1).filter((e) => e.startsWith('event: delta'));
      expect(deltas.length).toBeLessThanOrEqual(2.6 * 10 + 2);
      const received = deltas.flatMap((e) =>
        (JSON.parse(e.slice(e.indexOf('data: ') + 6)) as { steps: StepRow[] }).steps.map((r) => r.step),
      );
      // Every step exactly once, in order.
      expect(received.length).toBeGreaterThan(0);
      expect(received).toEqual([...Array(received.length).keys()]);
    } finally {
      await s.close();
    }
  });

  it('binds 127.0.0.1 when told no host, and closes its connections when closed', async () => {
    const s = await DashboardServer.start(
      { host: '127.0.0.1', port: 0 },
      { state: new RunState({ mode: 'local', totalSteps: 1, config: {} }) },
    );
    expect(s.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
    const res = await fetch(`${s.url}api/events`);
    const reader = res.body!.getReader();
    await reader.read(); // the snapshot
    await s.close();
    expect((await reader.read()).done).toBe(true);
    await expect(fetch(`${s.url}api/run`)).rejects.toThrow();
  });
});
