/// <reference lib="dom" />
import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { TestRedisServer } from '@gradq/cluster/testing';
import { afterAll, describe, expect, it } from 'vitest';
import { launchChromium } from '../render/chromium.js';
import { metricValue, parseMetrics } from '../testing/prometheus-text.js';
import { killLeftoverChildren, SHARED_DATA, spawnCli, waitFor } from '../testing/run-cli.js';

/** Where to write a screenshot of the page during the run (the README's picture), when set. */
const SCREENSHOT = process.env.GRADQ_DASHBOARD_SCREENSHOT;

const cleanups: Array<() => Promise<unknown> | void> = [];
afterAll(async () => {
  killLeftoverChildren();
  for (const c of cleanups.reverse()) await c();
});

describe('the dashboard in a browser', () => {
  it('shows a cluster run live: loss chart, both workers, one marked lost when killed, Bull Board, rising /metrics, no password', async () => {
    const password = randomBytes(12).toString('hex');
    const redis = await TestRedisServer.start({ password });
    cleanups.push(() => redis.kill());
    const url = redis.url(password);
    const queue = `test-dash-${randomUUID()}`;
    const worker = (name: string): ReturnType<typeof spawnCli> =>
      spawnCli(['worker', '--queue', queue, '--name', name, '--data-dir', SHARED_DATA, '--quiet'], { GRADQ_REDIS_URL: url });
    const workers = [worker('dash-w1'), worker('dash-w2')];
    // Long enough to outlast the test (it stops the run with SIGTERM).
    const coordinator = spawnCli([
      'train', '--workers', '0', '--redis', url, '--queue', queue, '--data-dir', SHARED_DATA, '--model', 'mlp:784-64-10',
      '--train-samples', '4096', '--epochs', '500', '--batch', '64', '--shards', '4', '--augment-shift', '0', '--dashboard', '0',
    ]); // prettier-ignore
    let stderr = '';
    coordinator.child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    await waitFor('the dashboard URL', () => /dashboard at http:\/\/127\.0\.0\.1:\d+\//.test(stderr), 60_000);
    const base = /dashboard at (http:\/\/127\.0\.0\.1:\d+\/)/.exec(stderr)![1];

    const browser = await launchChromium({ width: 1100, height: 900 });
    cleanups.push(() => browser.close());
    const page = await browser.context.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(base);
    // The loss chart has points and the worker table lists both workers, working.
    await page.waitForFunction(() => Number(document.body.dataset.steps) > 20, undefined, { timeout: 90_000 });
    const rows = page.locator('#workers tbody tr');
    await page.waitForFunction(() => document.querySelectorAll('#workers tbody tr .badge.working').length === 2, undefined, {
      timeout: 60_000,
    });
    expect(await rows.evaluateAll((trs) => trs.map((tr) => (tr as HTMLElement).dataset.worker))).toEqual(['dash-w1', 'dash-w2']);
    const lossPaths = await page.locator('#chart-loss canvas').count();
    expect(lossPaths).toBe(1);
    // For a picture, a few epochs in it.
    if (SCREENSHOT) await page.waitForFunction(() => Number(document.body.dataset.epochs) >= 4, undefined, { timeout: 120_000 });

    // /metrics parses as Prometheus text and its counters rise.
    const scrape = async (): Promise<ReturnType<typeof parseMetrics>> => parseMetrics(await (await fetch(`${base}metrics`)).text());
    const first = await scrape();
    await new Promise((r) => setTimeout(r, 1500));
    const second = await scrape();
    for (const [name, labels] of [
      ['gradq_steps_total', {}],
      ['gradq_samples_total', {}],
      ['gradq_worker_shards_total', { worker: 'dash-w1' }],
      ['gradq_worker_compute_seconds_total', { worker: 'dash-w2' }],
      ['gradq_step_phase_seconds_total', { phase: 'publish' }],
    ] as const) {
      // prettier-ignore
      expect(metricValue(second, name, labels), name).toBeGreaterThan(metricValue(first, name, labels));
    }
    expect(metricValue(second, 'gradq_results_rejected_total')).toBe(0);
    expect(metricValue(second, 'gradq_workers_connected')).toBe(2);
    expect(second.get('gradq_queue_jobs')?.metrics.map((m) => m.labels?.state)).toContain('waiting');

    // Nothing shows the Redis password: the page's data, the metrics, Bull Board's page and API.
    for (const path of ['', 'api/run', 'metrics', 'queues/', 'queues/api/queues', 'queues/api/redis/stats']) {
      const res = await fetch(`${base}${path}`);
      expect(res.status, path).toBe(200);
      expect(await res.text(), path).not.toContain(password);
    }
    expect(await page.content()).not.toContain(password);

    // A killed worker is marked lost.
    workers[1].child.kill('SIGKILL');
    await page.waitForFunction(
      () => document.querySelector('#workers tr[data-worker="dash-w2"] .badge')?.textContent === 'lost',
      undefined,
      { timeout: 60_000 },
    );
    expect(await page.locator('#workers tr[data-worker="dash-w1"] .badge').textContent()).toBe('working');
    if (SCREENSHOT) await page.screenshot({ path: SCREENSHOT, fullPage: true, type: 'png' });

    // Bull Board lists the queue, read-only.
    const board = await browser.context.newPage();
    await board.goto(`${base}queues`);
    await board.getByText(queue).first().waitFor({ timeout: 30_000 });
    const api = (await (await fetch(`${base}queues/api/queues`)).json()) as { queues: Array<{ name: string; readOnlyMode: boolean }> };
    expect(api.queues.map((q) => [q.name, q.readOnlyMode])).toEqual([[queue, true]]);
    expect(errors).toEqual([]);

    // The run stops on SIGTERM and its server closes with it.
    coordinator.child.kill('SIGTERM');
    const done = await coordinator.done;
    expect(done.code, done.stderr).toBe(143);
    await expect(fetch(`${base}api/run`)).rejects.toThrow();
    workers[0].child.kill('SIGTERM');
    await workers[0].done;
    expect(SCREENSHOT === undefined || existsSync(SCREENSHOT)).toBe(true);
  });
});
