import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BENCH_FLAGS } from './bench-flags.js';
import { runChild } from './runs/child-process.js';

/** The `gradq` bin (the composition root that registers this command) and the shared datasets, beside this app. */
const GRADQ_BIN = fileURLToPath(new URL('../../coordinator/bin/gradq.js', import.meta.url));
const SHARED_DATA = fileURLToPath(new URL('../../../../shared/data', import.meta.url));
const README = fileURLToPath(new URL('../../../README.md', import.meta.url));

/** Runs the compiled `gradq ARGS…` (tests depend on the build, as `nx test` does) and collects its output. */
const runCli = (args: readonly string[]) => runChild(process.execPath, [GRADQ_BIN, ...args]);

/** Runs `gradq ARGS… --out OUT` that must fail on input: exit 2, one `gradq: error:` line matching `pattern`, no OUT. */
async function expectInputError(args: readonly string[], pattern: RegExp, out: string): Promise<void> {
  const r = await runCli([...args, '--out', out]);
  expect(r.code, r.stderr).toBe(2);
  const lines = r.stderr.trim().split('\n');
  expect(lines, r.stderr).toHaveLength(1);
  expect(lines[0]).toMatch(/^gradq: error: /);
  expect(lines[0]).toMatch(pattern);
  expect(existsSync(out)).toBe(false);
}

const TINY = ['bench', '--data-dir', SHARED_DATA, '--batch', '64', '--train-samples', '1024'];
const HAS_NUMPY = spawnSync('python3', ['-c', 'import numpy'], { stdio: 'ignore' }).status === 0;
const HAS_TORCH =
  spawnSync(existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3', ['-c', 'import torch'], { stdio: 'ignore' }).status === 0;

let tmp: string;
let redis: Redis;
beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'gradq-bench-'));
  redis = new Redis('redis://127.0.0.1:6379', { maxRetriesPerRequest: 1 });
});
afterAll(async () => {
  await redis.quit();
  rmSync(tmp, { recursive: true, force: true });
});

interface BenchJson {
  machine: { cpus: number; cpu_model: string; node: string; date: string };
  rows: Array<{ trainer: string; workers: number | null; batch: number; samples_per_s: number; same_params: boolean | null }>;
}

/** A queue prefix no other test uses (the bench makes one queue per cluster run under it). */
const queuePrefix = (): string => `t-${randomUUID().slice(0, 8)}`;

/**
 * The plain bench, run once for the tests that read it: in-process and 1 worker side by side, and the NumPy
 * reference when python3 has numpy (without --skip-reference; the runs with it below show it is left out then).
 */
let plain: { out: string; prefix: string; r: Awaited<ReturnType<typeof runCli>> };
beforeAll(async () => {
  const out = join(tmp, 'tiny');
  const prefix = queuePrefix();
  plain = { out, prefix, r: await runCli([...TINY, '--workers', '1', '--queue', prefix, '--out', out]) };
});

describe('gradq bench', () => {
  it('runs in-process and 1 worker side by side, checks the params and writes bench.json and bench.svg', async () => {
    const { out, prefix, r } = plain;
    expect(r.code, r.stderr).toBe(0);
    // One progress line per run on stderr; the table on stdout.
    const runs = HAS_NUMPY ? 3 : 2;
    expect(r.stderr).toMatch(new RegExp(`\\[1/${runs}\\] batch 64, in-process … [\\d,]+ samples/s in \\d+\\.\\d s`));
    expect(r.stderr).toMatch(new RegExp(`\\[2/${runs}\\] batch 64, 1 worker … [\\d,]+ samples/s in \\d+\\.\\d s`));
    expect(r.stdout).toMatch(/same params/);
    expect(r.stdout).toMatch(/^ +64 {2}in-process .* reference$/m);
    expect(r.stdout).toMatch(/^ +64 {2}cluster, 1 worker .* ✓$/m);

    const report = JSON.parse(readFileSync(join(out, 'bench.json'), 'utf8')) as BenchJson;
    expect(report.machine.cpus).toBeGreaterThan(0);
    expect(report.machine.node).toBe(process.version);
    expect(report.rows.slice(0, 2).map((row) => [row.batch, row.trainer, row.workers, row.same_params])).toEqual([
      [64, 'in-process', null, null],
      [64, 'cluster', 1, true],
    ]);
    for (const row of report.rows) expect(row.samples_per_s).toBeGreaterThan(0);

    const svg = readFileSync(join(out, 'bench.svg'), 'utf8');
    expect(svg.startsWith('<svg')).toBe(true);
    expect(svg).toContain('>workers<');
    expect(svg).toContain('>training samples/s (log scale)<');
    // The in-process rule carries its figure.
    expect(svg).toContain(`>${Math.round(report.rows[0].samples_per_s).toLocaleString('en-US')}<`);
    // The bench removes its queues from the shared Redis.
    expect(await redis.keys(`gradq:${prefix}-*`)).toEqual([]);
  });

  it('with --sync local:4 --repeat 2, runs in-process and 1 worker in local SGD twice, alternately, checks the params and says so in bench.json', async () => {
    const out = join(tmp, 'local-sgd');
    const r = await runCli([...TINY, '--workers', '1', '--sync', 'local:4', '--repeat', '2', '--queue', queuePrefix(), '--out', out]);
    expect(r.code, r.stderr).toBe(0);
    // Alternately: in-process, 1 worker, in-process, 1 worker.
    expect(r.stderr.match(/\[\d\/4\] batch 64, [^…]*… /g)).toEqual([
      '[1/4] batch 64, in-process (1/2) … ',
      '[2/4] batch 64, 1 worker (1/2) … ',
      '[3/4] batch 64, in-process (2/2) … ',
      '[4/4] batch 64, 1 worker (2/2) … ',
    ]);
    // The cluster's speedup with the range of both repeats beside it.
    expect(r.stdout).toMatch(/^ +64 {2}cluster, 1 worker +[\d,]+ +\d+\.\d\d× \(\d+\.\d\d–\d+\.\d\d\) .* ✓$/m);
    type Row = BenchJson['rows'][number] & { speedup: number; repeats: { samples_per_s: number[]; speedup: number[] } };
    const report = JSON.parse(readFileSync(join(out, 'bench.json'), 'utf8')) as {
      config: { sync: string; repeat: number };
      rows: Row[];
      notes: string[];
    };
    expect(report.config).toMatchObject({ sync: 'local:4', repeat: 2 });
    // No reference trainer beside local SGD (they train synchronously), even without --skip-reference.
    expect(report.rows.map((row) => [row.trainer, row.same_params])).toEqual([
      ['in-process', null],
      ['cluster', true],
    ]);
    for (const row of report.rows) {
      expect(row.repeats.samples_per_s).toHaveLength(2);
      // A row is its lower middle repeat (of two, the slower in-process one, the cluster's lower speedup).
      if (row.trainer === 'in-process') expect(row.samples_per_s).toBe(Math.min(...row.repeats.samples_per_s));
      else expect(row.speedup).toBe(Math.min(...row.repeats.speedup));
    }
    expect(report.notes.some((n) => n.startsWith('--sync local:4: local SGD'))).toBe(true);
    expect(report.notes.some((n) => n.startsWith('--repeat 2: '))).toBe(true);
  });

  it('with --compress int8, runs every gradq trainer compressed, still with the same params, and reports ≤ 0.27× the gradient bytes', async () => {
    const out = join(tmp, 'int8');
    const r = await runCli([...TINY, '--workers', '1', '--compress', 'int8', '--skip-reference', '--queue', queuePrefix(), '--out', out]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/grad KB\/step/);
    expect(r.stdout).not.toContain('numpy'); // --skip-reference
    type Row = BenchJson['rows'][number] & { bytes_per_step: { params_down: number; gradients_up: number }; raw: { compress: string } };
    const report = JSON.parse(readFileSync(join(out, 'bench.json'), 'utf8')) as { config: { compress: string }; rows: Row[] };
    expect(report.config.compress).toBe('int8');
    expect(report.rows.map((row) => [row.trainer, row.same_params, row.raw.compress])).toEqual([
      ['in-process', null, 'int8'],
      ['cluster', true, 'int8'],
    ]);
    for (const row of report.rows) {
      // θ goes down as float32 (4 bytes a value, per shard); int8 gradients come up at n + 4 per block of 256.
      expect(row.bytes_per_step.gradients_up / row.bytes_per_step.params_down).toBeLessThanOrEqual(0.27);
      expect(row.bytes_per_step.gradients_up).toBeGreaterThan(0);
    }
  });

  it('with --fit, fits the step-time model to 1 and 2 workers, prints it with its points and projections, and keeps it', async () => {
    const out = join(tmp, 'fit');
    const r = await runCli([...TINY, '--workers', '1,2', '--fit', '--skip-reference', '--queue', queuePrefix(), '--out', out]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/step-time model, batch 64, 4 shards, \d+ cores \(fitted to 2 cluster runs\)/);
    expect(r.stdout).toMatch(/t_step\(N\) = \d+\.\d\d ms × c\(N\) \+ -?\d+\.\d\d ms \+ -?\d+\.\d\d ms × N/);
    expect(r.stdout).toMatch(/^ +sync +[\d,]+ +[\d,]+ +[\d,]+$/m);
    expect(r.stdout).toMatch(/^ +local:8 +[\d,]+ +[\d,]+ +[\d,]+$/m);
    const report = JSON.parse(readFileSync(join(out, 'bench.json'), 'utf8')) as BenchJson & {
      fits: Array<{ batch: number; points: Array<{ workers: number; measuredMs: number; modelMs: number }>; rmsErrorMs: number }>;
    };
    expect(report.fits).toHaveLength(1);
    // Two points, two fitted terms: the line goes through both, unless a term had to be held at 0 (a cost ≥ 0).
    const fit = report.fits[0] as (typeof report.fits)[0] & { fixedMs: number; perWorkerMs: number };
    expect(fit.points.map((p) => p.workers)).toEqual([1, 2]);
    expect(Math.min(fit.fixedMs, fit.perWorkerMs)).toBeGreaterThanOrEqual(0);
    if (fit.fixedMs > 0 && fit.perWorkerMs > 0) for (const p of fit.points) expect(p.modelMs).toBeCloseTo(p.measuredMs, 6);
    expect(readFileSync(join(out, 'bench.svg'), 'utf8')).toContain('stroke-dasharray="3,3"');
  });

  it.skipIf(!HAS_NUMPY)('adds the NumPy reference when python3 has numpy', () => {
    const { out, r } = plain;
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^ +64 {2}numpy \(60000 samples\) +[\d,]+ /m);
    expect(r.stdout).toContain('all 60000 samples');
    const report = JSON.parse(readFileSync(join(out, 'bench.json'), 'utf8')) as BenchJson;
    expect(report.rows.map((row) => row.trainer)).toEqual(['in-process', 'cluster', 'numpy']);
  });
});

describe('gradq bench with a convolutional model', () => {
  it.skipIf(!HAS_TORCH)('runs in-process, 1 worker and PyTorch (the same architecture, one thread) side by side', async () => {
    const out = join(tmp, 'torch');
    const args = ['bench', '--data-dir', SHARED_DATA, '--model', 'lenet', '--batch', '64', '--train-samples', '512'];
    const r = await runCli([...args, '--workers', '1', '--queue', queuePrefix(), '--out', out]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^ +64 {2}pytorch, 1 thread +[\d,]+ /m);
    expect(r.stdout).toMatch(/^ +64 {2}cluster, 1 worker .* ✓$/m);
    const report = JSON.parse(readFileSync(join(out, 'bench.json'), 'utf8')) as BenchJson & {
      rows: Array<{ train_samples: number; raw: unknown }>;
    };
    expect(report.rows.map((row) => row.trainer)).toEqual(['in-process', 'cluster', 'pytorch']);
    expect(report.rows[2].train_samples).toBe(512);
    expect(String(report.rows[2].raw)).toContain('spec=cnn:1x28x28/conv5x16/relu/pool2/conv5x32/relu/pool2/flatten/dense128/relu/dense10');
  });
});

// Each case is a process that refuses its input at once: they run side by side.
describe.concurrent('gradq bench: bad input is one error line and exit code 2, before any run', () => {
  const cases: Array<[string, string[], RegExp]> = [
    ['a worker count that is not a number', ['--workers', '1,x'], /--workers 1,x: "x" is not a whole number/],
    ['a negative worker count', ['--workers', '-1'], /--workers -1: "-1" is not a whole number/],
    ['batch 0', ['--batch', '0'], /--batch 0: 0 must be >= 1/],
    ['an empty list item', ['--batch', '64,,512'], /--batch 64,,512: "" is not a whole number/],
    ['a repeated value', ['--workers', '2,2'], /--workers 2,2: 2 is given twice/],
    ['more shards than a batch', ['--batch', '64,2'], /--shards: 4 shards exceed a batch of 2/],
    ['an unknown model spec', ['--model', 'cnn:3x3'], /--model: model spec "cnn:3x3": input "3x3" is not CxHxW/],
    ['a queue prefix with a colon', ['--queue', 'a:b'], /--queue a:b: use 1-32 letters/],
    ['a sync mode with H = 0', ['--sync', 'local:0'], /--sync: sync mode local:0: H "0" is not a whole number >= 1 \(e\.g\. local:8\)/],
    ['an unknown sync mode', ['--sync', 'async'], /--sync: unknown sync mode "async" \(use sync or local:H, e\.g\. local:8\)/],
    [
      '--fit with one worker count',
      ['--workers', '0,2', '--fit'],
      /--fit needs cluster runs at two or more worker counts \(--workers 0,2;/,
    ],
  ];
  it.each(cases)('%s', async (_name, extra, pattern) => {
    await expectInputError(['bench', '--data-dir', SHARED_DATA, ...extra], pattern, join(tmp, `never-${randomUUID()}`));
  });
});

describe('gradq bench in the gradq command', () => {
  it('is listed by gradq --help', async () => {
    const r = await runCli(['--help']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^ {2}bench {4}measure training speed: /m);
    expect(r.stdout).toContain('\ngradq bench [--workers 1,2,4] ');
  });

  it('explains every flag in gradq bench --help and in the README', async () => {
    const r = await runCli(['bench', '--help']);
    expect(r.code, r.stderr).toBe(0);
    const readme = readFileSync(README, 'utf8');
    for (const flag of Object.keys(BENCH_FLAGS)) {
      expect(r.stdout).toContain(`--${flag}`);
      expect(readme).toContain(`--${flag}`);
    }
  });
});
