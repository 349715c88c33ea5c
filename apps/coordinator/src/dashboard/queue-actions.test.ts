import { randomUUID } from 'node:crypto';
import { QUEUE_PREFIX } from '@gradq/cluster';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DashboardServer } from './dashboard-server.js';
import { RunState } from './run-state.js';

// Bull Board against a real queue on the shared Redis (a name of this test's own, removed at the end).
const redis = new Redis('redis://127.0.0.1:6379', { maxRetriesPerRequest: null });
const name = `gradq-test-board-${randomUUID().slice(0, 8)}`;
const queue = new Queue(name, { connection: redis, prefix: QUEUE_PREFIX });
const state = new RunState({ mode: 'cluster', totalSteps: 1, config: {} });
let readOnly: DashboardServer;
let actions: DashboardServer;

beforeAll(async () => {
  readOnly = await DashboardServer.start({ host: '127.0.0.1', port: 0 }, { state, queue });
  actions = await DashboardServer.start({ host: '127.0.0.1', port: 0 }, { state, queue, queueActions: true });
});
afterAll(async () => {
  await readOnly?.close();
  await actions?.close();
  await queue.obliterate({ force: true });
  await queue.close();
  await redis.quit();
});

/** Bull Board's "pause this queue" as its page sends it, from `origin` (undefined: no Origin header). */
function pause(server: DashboardServer, origin: string | undefined): Promise<Response> {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (origin !== undefined) headers.origin = origin;
  return fetch(`${server.url}queues/api/queues/${encodeURIComponent(name)}/pause`, { method: 'PUT', headers });
}

describe('Bull Board actions', () => {
  it('are refused by default: the queue stays as it is, whoever asks', async () => {
    const res = await pause(readOnly, readOnly.url.replace(/\/$/, ''));
    expect(res.status).toBeGreaterThanOrEqual(400);
    expect(await queue.isPaused()).toBe(false);
    const api = (await (await fetch(`${readOnly.url}queues/api/queues`)).json()) as { queues: Array<{ readOnlyMode: boolean }> };
    expect(api.queues.map((q) => q.readOnlyMode)).toEqual([true]);
  });

  it('with queueActions, are taken from the dashboard’s own page only: not from another origin, not without one', async () => {
    for (const origin of ['http://evil.example', undefined, actions.url.replace('127.0.0.1', 'localhost').replace(/\/$/, '')]) {
      const res = await pause(actions, origin);
      expect(res.status, String(origin)).toBe(403);
      expect(await res.text()).toMatch(/must come from this dashboard's own page/);
      expect(await queue.isPaused()).toBe(false);
    }
    const api = (await (await fetch(`${actions.url}queues/api/queues`)).json()) as { queues: Array<{ readOnlyMode: boolean }> };
    expect(api.queues.map((q) => q.readOnlyMode)).toEqual([false]);
    const res = await pause(actions, actions.url.replace(/\/$/, ''));
    expect(res.status).toBeLessThan(300);
    expect(await queue.isPaused()).toBe(true);
  });
});
