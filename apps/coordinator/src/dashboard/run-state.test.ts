import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ShardResult } from '@gradq/cluster';
import { afterAll, describe, expect, it } from 'vitest';
import type { ConnectedWorker } from '../cluster/worker-roster.js';
import { shardResult } from '../testing/shard-result.js';
import { METRICS_LOG_FILE, readMetricsLog } from './metrics-log.js';
import { RunState, WORKING_MS } from './run-state.js';

const result = (worker: string, computeMs: number): ShardResult => shardResult({ worker, computeMs, fetchMs: 1, uploadMs: 1 });
const phases = { publish: 1, gather: 2, queueWait: 3, workerFetch: 4, workerCompute: 5, workerUpload: 6, aggregate: 7 };

describe('RunState', () => {
  it('tallies each worker and tells working, idle and lost apart by its connection and last result', () => {
    let connected: ConnectedWorker[] = [
      { name: 'a', addr: '10.0.0.5:4000', connectedMs: 1 },
      { name: 'b', addr: '10.0.0.6:4000', connectedMs: 1 },
      { name: 'c', addr: '[::1]:4000', connectedMs: 1 },
    ];
    const counters = { duplicates: 1, rejected: 2, recomputed: 3, failed: 4, late: 5 };
    const state = new RunState({ mode: 'cluster', totalSteps: 10, config: {} }, { counters, connected: () => connected });
    state.stepGathered(0, phases, [result('a', 2), result('b', 4), result('a', 6), undefined]);
    state.step({ step: 0, epoch: 0, totalSteps: 10, samples: 4, lossSum: 2, correct: 1, lr: 0.1, sourceMs: 10, optimizerMs: 1 });
    const now = Date.now();
    expect(state.workers(now)).toEqual([
      { name: 'a', host: '10.0.0.5', shards: 2, meanComputeMs: 4, lastSeen: expect.any(Number), state: 'working' },
      { name: 'b', host: '10.0.0.6', shards: 1, meanComputeMs: 4, lastSeen: expect.any(Number), state: 'working' },
      { name: 'c', host: '[::1]', shards: 0, meanComputeMs: 0, lastSeen: 0, state: 'idle' },
    ]);
    expect(state.workers(now + WORKING_MS).map((w) => w.state)).toEqual(['idle', 'idle', 'idle']);
    connected = connected.filter((c) => c.name !== 'b');
    expect(state.workers(now).map((w) => [w.name, w.host, w.state])).toEqual([['a', '10.0.0.5', 'working'], ['b', '10.0.0.6', 'lost'], ['c', '[::1]', 'idle']]); // prettier-ignore
    expect(state.counters()).toEqual(counters);
    expect(state.steps[0]).toMatchObject({ loss: 0.5, accuracy: 0.25, ms: 11, publishMs: 1, queueWaitMs: 3, computeMs: 5, aggregateMs: 7 });
    expect(state.totals.phaseMs).toEqual({ publish: 1, queue_wait: 3, fetch: 4, compute: 5, upload: 6, aggregate: 7, optimizer: 1 });
  });
});

describe('readMetricsLog', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'gradq-log-'));
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));
  const write = (lines: unknown[]): string => {
    const dir = mkdtempSync(join(tmp, 'd'));
    writeFileSync(join(dir, METRICS_LOG_FILE), lines.map((l) => (typeof l === 'string' ? l : JSON.stringify(l))).join('\n') + '\n');
    return dir;
  };
  const run = { kind: 'run', info: { mode: 'local', totalSteps: 4, config: { model: 'x' } } };
  const step = (n: number, loss = 1): Record<string, unknown> => ({
    kind: 'step',
    step: n,
    epoch: 0,
    samples: 2,
    loss,
    accuracy: 0.5,
    lr: 0.1,
    ms: 1,
    optimizerMs: 0.1,
    time: 0,
  });

  it('keeps the steps of a resumed run over those of the run it resumed', () => {
    const state = readMetricsLog(write([run, step(0), step(1), step(2, 9), run, step(2), step(3)]));
    expect(state.steps.map((s) => [s.step, s.loss])).toEqual([[0, 1], [1, 1], [2, 1], [3, 1]]); // prettier-ignore
    expect(state.status).toBe('failed'); // no end line: the run did not finish
  });
  it('forgives a last line cut short', () => expect(readMetricsLog(write([run, step(0), '{"kind":"st'])).steps).toHaveLength(1));
  it('names the line and field that are wrong', () => {
    expect(() => readMetricsLog(write([run, { ...step(0), loss: 'x' }, step(1)]))).toThrow(/metrics\.jsonl:2: "loss" is "x", not a number/);
    expect(() => readMetricsLog(write([run, { kind: 'nope' }]))).toThrow(/:2: unknown kind "nope"/);
    expect(() => readMetricsLog(write([step(0)]))).toThrow(/no "run" line/);
  });
  it('says how to make one when there is none', () =>
    expect(() => readMetricsLog(join(tmp, 'none'))).toThrow(/cannot read .* \(ENOENT\); write one with gradq train --log-dir/));
});
