import { parse, View } from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import type { BenchReport } from './bench-result.js';
import { stepMs } from './step-model.js';

/**
 * The Vega-Lite spec of the chart: training samples/s against the worker count, one line per batch size, with
 * the in-process run and the reference trainer (NumPy or PyTorch) of each batch as horizontal rules (log scale: they differ by
 * orders of magnitude); with --fit, the fitted step-time model of each batch as a thin dashed line.
 */
export function benchChartSpec(report: BenchReport): TopLevelSpec {
  const batchName = (b: number): string => `batch ${b}`;
  const cluster = report.rows
    .filter((r) => r.trainer === 'cluster')
    .map((r) => ({ batch: batchName(r.batch), workers: r.workers, samples_per_s: r.samples_per_s }));
  const inProcess = 'gradq in-process';
  const names: Record<string, string> = {
    'in-process': inProcess,
    numpy: 'NumPy, 1 thread (60000 samples)',
    pytorch: 'PyTorch, 1 thread',
  };
  const references = report.rows
    .filter((r) => r.trainer !== 'cluster')
    .map((r) => ({ batch: batchName(r.batch), reference: names[r.trainer], samples_per_s: r.samples_per_s }));
  const dashes = [
    { name: inProcess, dash: [6, 4] },
    { name: names.numpy, dash: [2, 2] },
    { name: names.pytorch, dash: [1, 3] },
  ].filter((d) => references.some((r) => r.reference === d.name));
  const color = { field: 'batch', type: 'nominal', title: 'batch', sort: report.config.batches.map(batchName) } as const;
  // The domain fits the figures (a log scale made nice spans whole powers of ten: 1,000-10,000 for figures of
  // 5,000-8,000, half the chart empty), with some room so that no point sits on the frame.
  const y = {
    field: 'samples_per_s',
    type: 'quantitative',
    title: 'training samples/s (log scale)',
    scale: { type: 'log', nice: false, padding: 16 },
  } as const;
  const c = report.config;
  // With --fit, each batch's model at every worker count from 1 to the most measured.
  const most = Math.max(...c.workers);
  const model = (report.fits ?? []).flatMap((m) =>
    Array.from({ length: most }, (_, i) => i + 1).map((workers) => ({
      batch: batchName(m.batch),
      workers,
      samples_per_s: (1000 * m.batch) / stepMs(m, workers, m.shards, m.cores),
    })),
  );
  const labels = ruleLabels(
    references,
    [...cluster, ...model, ...references].map((r) => r.samples_per_s),
    HEIGHT,
  );
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: {
      text: `gradq bench: ${c.model}, ${c.optimizer}, ${c.shards} shard${c.shards === 1 ? '' : 's'}, ${c.train_samples.toLocaleString('en-US')} samples`,
      subtitle: [
        `${report.machine.cpus} × ${report.machine.cpu_model}, Node ${report.machine.node}, ${report.machine.date.slice(0, 10)}`,
        ...(model.length > 0 ? ['thin dashed lines: the fitted step-time model (--fit)'] : []),
      ],
    },
    width: 480,
    height: HEIGHT,
    config: { legend: { labelLimit: 300 } },
    layer: [
      {
        data: { values: references },
        mark: { type: 'rule', strokeWidth: 1.5 },
        encoding: {
          y,
          color,
          strokeDash: {
            field: 'reference',
            type: 'nominal',
            title: 'reference',
            scale: { domain: dashes.map((d) => d.name), range: dashes.map((d) => d.dash) },
          },
        },
      },
      {
        // Each rule's figure written on it: a log axis may have no tick near it; figures of rules too close to
        // be read apart stand side by side.
        data: { values: labels },
        mark: { type: 'text', align: 'left', baseline: 'bottom', dx: 4, dy: -2, fontSize: 11 },
        encoding: {
          x: { field: 'x', type: 'quantitative', scale: null },
          y,
          color,
          text: { field: 'samples_per_s', type: 'quantitative', format: ',.0f' },
        },
      },
      ...(model.length === 0
        ? []
        : [
            {
              // The fitted step-time model (--fit), thin, under the measured points.
              data: { values: model },
              mark: { type: 'line', strokeWidth: 1, strokeDash: [3, 3], opacity: 0.8 },
              encoding: { x: { field: 'workers', type: 'quantitative' }, y, color },
            },
          ]),
      {
        data: { values: cluster },
        mark: { type: 'line', point: true },
        encoding: {
          x: { field: 'workers', type: 'quantitative', title: 'workers', axis: { values: c.workers, format: 'd' }, scale: { padding: 24 } },
          y,
          color,
        },
      },
    ],
  } as TopLevelSpec;
}

const HEIGHT = 300;
/** Pixels between the baselines of two rule labels below which they would overlap (11 px text). */
const LABEL_GAP = 13;
/** Pixels from one label to the next when they stand side by side. */
const LABEL_STEP = 60;

/**
 * The rules' labels with the x (pixels from the left) each is written at: 0, unless it would overlap the one below
 * it on the log axis, when it moves one step right of that one. `values` are all the figures the axis spans.
 */
export function ruleLabels<R extends { samples_per_s: number }>(
  rules: readonly R[],
  values: readonly number[],
  height: number,
): (R & { x: number })[] {
  const span = Math.log(Math.max(...values) / Math.min(...values)) || 1;
  const sorted = [...rules].sort((a, b) => a.samples_per_s - b.samples_per_s);
  const out: (R & { x: number })[] = [];
  for (const rule of sorted) {
    const below = out[out.length - 1];
    const close = below !== undefined && (height * Math.log(rule.samples_per_s / below.samples_per_s)) / span < LABEL_GAP;
    out.push({ ...rule, x: close ? below.x + LABEL_STEP : 0 });
  }
  return out;
}

/** The chart as SVG text, compiled to Vega and rendered headless (no canvas, no browser). */
export async function renderBenchChart(report: BenchReport): Promise<string> {
  const view = new View(parse(compile(benchChartSpec(report)).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}
