import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Model } from '@gradq/nn';
import { defineCommand, formatCount, UsageError, writeFileAtomic, type CommandIo, type ParsedFlags } from '@gradq/cli';
import { BENCH_FLAGS, benchPlanFromFlags, type BenchPlan } from './bench-flags.js';
import {
  benchNotes, clusterRow, describeMachine, inProcessRow, referenceRow, type BenchReport, type BenchRow,
} from './report/bench-result.js'; // prettier-ignore
import { formatBenchTable, trainerName } from './report/bench-table.js';
import { medianRun } from './report/repeats.js';
import { fitStepModel, type StepModel } from './report/step-model.js';
import { formatStepModel } from './report/step-model-table.js';
import { runGradqTrain } from './runs/child-process.js';
import { dropQueue } from './runs/drop-queue.js';
import { referenceFor } from './runs/reference.js';
import { RunProgress } from './runs/run-progress.js';

/**
 * `gradq bench`. Its runs are `gradq train` children started as `node GRADQ_BIN train …`: the composition root
 * that registers the command passes the path of its own bin, so that this app needs no other app.
 */
export function benchCommand(gradqBin: string) {
  return defineCommand({
    summary: 'measure training speed: in-process vs the cluster with 1, 2, 4… workers (and NumPy or PyTorch), side by side',
    usage: 'gradq bench [--workers 1,2,4] [--batch 64,512] [--shards K] [--out DIR] [flags]',
    flags: BENCH_FLAGS,
    run: (flags, io) => runBench(gradqBin, flags, io),
  });
}

/** Every run of the plan in this one invocation, then the table, bench.json and bench.svg. */
async function runBench(gradqBin: string, flags: ParsedFlags<typeof BENCH_FLAGS>, io: CommandIo): Promise<void> {
  // Configuration: every check before the first run.
  const plan = benchPlanFromFlags(flags);
  const outDir = resolve(plan.out);
  try {
    mkdirSync(outDir, { recursive: true });
  } catch (e) {
    throw new UsageError(`--out ${plan.out}: cannot create the folder (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  const found = plan.reference ? referenceFor(plan) : undefined;
  const reference = found !== undefined && 'run' in found ? found : undefined;
  const referenceSkipped = found !== undefined && 'skipped' in found ? found.skipped : undefined;
  const log = (line: string): void => void io.stderr.write(`${line}\n`);
  if (referenceSkipped !== undefined) log(`reference trainer skipped: ${referenceSkipped}`);

  // The runs, batch by batch: in-process baseline, each worker count (--repeat N: N times, alternately), the
  // reference; all in this one invocation.
  const runId = `${Date.now().toString(36)}${randomBytes(2).toString('hex')}`;
  const perBatch = plan.repeat * (1 + plan.workers.length) + (reference ? 1 : 0);
  const progress = new RunProgress(io.stderr, plan.batches.length * perBatch);
  const rows: BenchRow[] = [];
  for (const batch of plan.batches) {
    const common = trainArgs(plan, batch);
    const bases: BenchRow[] = [];
    const clusters: BenchRow[][] = plan.workers.map(() => []);
    for (let repeat = 1; repeat <= plan.repeat; repeat++) {
      const of = plan.repeat > 1 ? ` (${repeat}/${plan.repeat})` : '';
      const base = await measure(progress, `batch ${batch}, in-process${of}`, async () =>
        inProcessRow(batch, await runGradqTrain(gradqBin, `batch ${batch} in-process`, ['--local', ...common])),
      );
      if (bases.length > 0 && base.params_sha256 !== bases[0].params_sha256) {
        throw new Error(
          `batch ${batch}: in-process run ${repeat} ended with other parameters than run 1 (${base.params_sha256} vs ${bases[0].params_sha256})`,
        );
      }
      bases.push(base);
      for (const [i, workers] of plan.workers.entries()) {
        const queue = `${plan.queuePrefix}-${runId}-b${batch}-w${workers}${plan.repeat > 1 ? `-r${repeat}` : ''}`;
        const label = `batch ${batch}, ${workers === 0 ? `external workers on queue ${queue}` : `${workers} worker${workers === 1 ? '' : 's'}`}${of}`;
        const row = await measure(progress, label, async () => {
          const summary = await runGradqTrain(gradqBin, `batch ${batch} with ${workers} workers`, [
            '--workers', String(workers), '--queue', queue, ...common,
          ]); // prettier-ignore
          await dropQueue(queue, summary.redis, log);
          return clusterRow(base, workers, queue, summary);
        });
        clusters[i].push(row);
      }
    }
    const base = medianRun(bases);
    rows.push(base, ...clusters.map(medianRun));
    if (reference) {
      rows.push(
        await measure(progress, `batch ${batch}, ${reference.label}`, async () => {
          const t0 = performance.now();
          const result = await reference.run(batch);
          return referenceRow(base, reference.trainer, result, (performance.now() - t0) / 1000);
        }),
      );
    }
  }

  // Report: table, bench.json, bench.svg.
  const machine = describeMachine();
  const fits: StepModel[] = [];
  if (plan.fit) {
    const o = { shards: plan.shards, cores: machine.cpus, parameters: Model.parameterCount(plan.spec) };
    for (const base of rows.filter((r) => r.trainer === 'in-process')) {
      const fitted = fitStepModel(base, rows, o);
      if (fitted) fits.push(fitted);
    }
  }
  const report: BenchReport = {
    machine,
    config: {
      dataset: 'mnist', model: plan.model, optimizer: plan.optimizer, sync: plan.sync, compress: plan.compress, shm: plan.shm, shards: plan.shards, epochs: plan.epochs,
      train_samples: plan.trainSamples, workers: plan.workers, batches: plan.batches, repeat: plan.repeat,
    }, // prettier-ignore
    rows,
    ...(referenceSkipped === undefined ? {} : { reference_skipped: referenceSkipped }),
    ...(plan.fit ? { fits } : {}),
    notes: benchNotes(plan, reference?.note ?? (referenceSkipped === undefined ? undefined : `reference: skipped (${referenceSkipped}).`)),
  };
  const json = join(outDir, 'bench.json');
  const svg = join(outDir, 'bench.svg');
  writeFileAtomic(json, Buffer.from(`${JSON.stringify(report, null, 2)}\n`));
  // Vega is loaded only here, so that other gradq commands do not pay for it at startup.
  const { renderBenchChart } = await import('./report/bench-chart.js');
  writeFileAtomic(svg, Buffer.from(await renderBenchChart(report)));
  const m = report.machine;
  const models = fits.map((f) => `\n${formatStepModel(f)}`).join('');
  const table = `\n${m.cpus} × ${m.cpu_model}, Node ${m.node}, ${m.date}\n\n${formatBenchTable(report)}${models}\nwrote ${json} and ${svg}\n`;
  if (plan.json) {
    io.stderr.write(table);
    io.stdout.write(`${JSON.stringify(report)}\n`);
  } else io.stdout.write(table);

  // The exactness guarantee: a cluster run that ends elsewhere than the in-process run is a bug, not noise.
  const differ = rows.filter((r) => r.same_params === false);
  if (differ.length > 0) {
    throw new Error(
      `the cluster did not reproduce the in-process parameters for ${differ.map((r) => `batch ${r.batch} ${trainerName(r)}`).join('; ')}`,
    );
  }
}

/** The flags every run of a batch shares (so that their parameters must agree); no augmentation, like the references. */
function trainArgs(plan: BenchPlan, batch: number): string[] {
  return [
    '--model', plan.model, '--optimizer', plan.optimizer, '--batch', String(batch), '--shards', String(plan.shards),
    '--epochs', String(plan.epochs), '--train-samples', String(plan.trainSamples), '--augment-shift', '0', '--sync', plan.sync, '--compress', plan.compress,
    '--shm', plan.shm,
    ...(plan.dataDir === undefined ? [] : ['--data-dir', plan.dataDir]),
  ]; // prettier-ignore
}

/** Runs one measurement under a progress line that ends with its samples/s. */
async function measure(progress: RunProgress, label: string, run: () => Promise<BenchRow>): Promise<BenchRow> {
  const line = progress.start(label);
  try {
    const row = await run();
    line.end(`${formatCount(row.samples_per_s)} samples/s${row.same_params === false ? ', params DIFFER' : ''}`);
    return row;
  } catch (e) {
    line.fail();
    throw e;
  }
}
