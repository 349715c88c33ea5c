import { availableParallelism } from 'node:os';
import { UsageError, type Command, type CommandIo } from '@gradq/cli';
import { loadDataset } from '@gradq/data';
import { ClusterRun } from '../cluster/cluster-run.js';
import { Checkpointer } from '../train/checkpoint.js';
import type { GradientSource } from '../train/gradient-source.js';
import { LocalGradientSource } from '../train/local-gradient-source.js';
import { trainConfigFromFlags } from '../train/train-config.js';
import { TRAIN_FLAGS } from '../train/train-flags.js';
import { runTraining, setUpTraining, type TrainSummary } from '../train/trainer.js';

export const trainCommand: Command = {
  summary: 'train a model: on a cluster of workers over Redis, or in this process with --local',
  usage: 'gradq train [--local | --workers N --redis URL] [flags]',
  flags: TRAIN_FLAGS,
  async run(flags, io) {
    const config = trainConfigFromFlags(flags);
    const local = flags.local === true;
    for (const flag of ['workers', 'redis'] as const) {
      if (local && flags[flag] !== undefined) throw new UsageError(`--${flag} has no meaning with --local (training runs in this process)`);
    }
    const log = (line: string): void => void (config.json ? io.stderr : io.stdout).write(`${line}\n`);
    const dataset = await loadDataset(config.dataset, { dataDir: config.dataDir });
    const setup = setUpTraining(config, dataset);
    const checkpointer = config.checkpoint === undefined ? undefined : new Checkpointer(config.checkpoint, config.checkpointEvery);
    const cursor = config.resume && checkpointer ? checkpointer.load(config, setup.model, setup.optimizer) : undefined;
    if (config.resume)
      log(
        cursor
          ? `resuming from ${checkpointer?.file} at step ${cursor.nextStep}`
          : `no checkpoint in ${config.checkpoint}: starting at step 0`,
      );

    let source: GradientSource;
    let cluster: ClusterRun | undefined;
    if (local) source = new LocalGradientSource(setup.model, setup.train, Math.ceil(config.batch / config.shards));
    else {
      cluster = await ClusterRun.start({
        flags, config, paramCount: setup.model.params.length, trainSamples: setup.train.count,
        workers: (flags.workers as number | undefined) ?? availableParallelism(), log: (line) => void io.stderr.write(`${line}\n`),
      }); // prettier-ignore
      source = cluster.source;
    }
    let summary: TrainSummary;
    try {
      summary = await runTraining(
        setup,
        source,
        { log, progress: io.stderr },
        { checkpointer, cursor, progressText: cluster?.progressText },
      );
    } finally {
      await cluster?.stop();
    }
    const report = { ...summary, ...cluster?.report() };
    if (config.json) io.stdout.write(`${JSON.stringify(report)}\n`);
    else printSummary(io, report);
  },
};

function printSummary(io: CommandIo, s: TrainSummary): void {
  io.stdout.write(
    `test accuracy ${(100 * s.test_accuracy).toFixed(2)}%  ${s.train_samples_per_s} samples/s  params_sha256 ${s.params_sha256}\n`,
  );
}
