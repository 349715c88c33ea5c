import { availableParallelism } from 'node:os';
import { defineCommand, removeStaleTempFiles, transferProgress, UsageError, type CommandIo } from '@gradq/cli';
import { resolveSecret } from '@gradq/cluster';
import { loadDataset } from '@gradq/data';
import {
  Checkpointer,
  freshReplicaState,
  LocalGradientSource,
  makeReplica,
  replicaSpec,
  runTraining,
  setUpTraining,
  type GradientSource,
  type TrainSummary,
} from '@gradq/train';
import { ClusterRun } from '../cluster/cluster-run.js';
import { parseListenAddress } from '../dashboard/listen-address.js';
import { RunWatch } from '../dashboard/run-watch.js';
import { untilStopSignal } from '../dashboard/until-stop-signal.js';
import { trainConfigFromFlags } from '../train/train-config-from-flags.js';
import { TRAIN_FLAGS } from '../train/train-flags.js';

export const trainCommand = defineCommand({
  summary: 'train a model: on a cluster of workers over Redis, or in this process with --local',
  usage: 'gradq train [--local | --workers N --redis URL] [flags]',
  flags: TRAIN_FLAGS,
  async run(flags, io) {
    const config = trainConfigFromFlags(flags);
    for (const flag of ['workers', 'redis', 'secret-file'] as const) {
      if (flags.local && flags[flag] !== undefined)
        throw new UsageError(`--${flag} has no meaning with --local (training runs in this process)`);
    }
    const secret = flags.local ? undefined : resolveSecret(flags['secret-file']); // before any work: a bad secret is bad input
    const dashboard = flags.dashboard === undefined ? undefined : parseListenAddress('dashboard', flags.dashboard);
    for (const flag of ['dashboard-keep', 'dashboard-actions'] as const) {
      if (flags[flag] && !dashboard) throw new UsageError(`--${flag} needs --dashboard [HOST:]PORT`);
    }
    const log = (line: string): void => void (flags.json ? io.stderr : io.stdout).write(`${line}\n`);
    const dataset = await loadDataset(config.dataset, { dataDir: config.dataDir, progress: transferProgress(io.stderr) });
    const setup = setUpTraining(config, dataset);
    const checkpointer = config.checkpoint === undefined ? undefined : new Checkpointer(config.checkpoint, config.checkpointEvery);
    // What a killed run's atomic writes left behind.
    for (const file of [checkpointer?.file, checkpointer?.previousFile, config.out]) {
      if (file !== undefined) for (const name of removeStaleTempFiles(file)) log(`removed ${name}, left by an interrupted write`);
    }
    const loaded = config.resume && checkpointer ? checkpointer.load(config, setup.model, setup.optimizer) : undefined;
    const cursor = loaded?.cursor;
    if (config.resume) {
      const unverified = loaded?.verified === false ? ' (format version 1: no checksum to check it against)' : '';
      log(
        cursor
          ? `resuming from ${checkpointer?.file} at step ${cursor.nextStep}${unverified}`
          : `no checkpoint in ${config.checkpoint}: starting at step 0`,
      );
    }

    let source: GradientSource;
    let cluster: ClusterRun | undefined;
    const replica = config.sync?.kind === 'local' ? makeReplica(setup) : undefined;
    if (flags.local)
      source = new LocalGradientSource(
        setup.model,
        setup.train,
        { seed: config.seed, shift: config.augmentShift },
        replica,
        config.compress,
      );
    else {
      cluster = await ClusterRun.start({
        queue: flags.queue,
        redis: flags.redis,
        config,
        paramCount: setup.model.params.length,
        trainSamples: setup.train.count,
        workers: flags.workers ?? availableParallelism(),
        sharedMemory: flags.shm === 'auto',
        secret,
        giveUpMs: flags['give-up-after'] * 1000,
        leaseSteps: flags['lease-steps'],
        optimizer: { instance: setup.optimizer, replica: replicaSpec(setup) },
        ...(config.sync?.kind === 'local' && {
          rounds: {
            h: config.sync.h, batch: config.batch, shards: config.shards, epochs: config.epochs, replica: replicaSpec(setup),
            stateBuffers: freshReplicaState(setup.optimizer).buffers.length,
          }, // prettier-ignore
        }),
        log: (line) => void io.stderr.write(`${line}\n`),
      });
      source = cluster.source;
    }
    let summary: TrainSummary;
    let watch: RunWatch | undefined;
    try {
      watch = await RunWatch.start({
        config, totalSteps: setup.totalSteps, cluster, queue: flags.queue, workers: flags.workers ?? availableParallelism(),
        dashboard, queueActions: flags['dashboard-actions'], logDir: flags['log-dir'], log: (line) => void io.stderr.write(`${line}\n`),
      }); // prettier-ignore
      summary = await runTraining(
        setup,
        source,
        { log, progress: io.stderr },
        {
          checkpointer,
          cursor,
          local: loaded?.local,
          residuals: loaded?.residuals,
          progressText: cluster?.progressText,
          observers: watch.observers,
        },
      );
      await watch.finish(true);
    } catch (e) {
      await watch?.finish(false);
      await watch?.close();
      throw e;
    } finally {
      await cluster?.stop();
    }
    const report = { ...summary, ...cluster?.report() };
    if (flags.json) io.stdout.write(`${JSON.stringify(report)}\n`);
    else printSummary(io, report);
    if (flags['dashboard-keep'] && watch.server) {
      io.stderr.write(`training done; the dashboard stays up at ${watch.server.url} until Ctrl-C\n`);
      await untilStopSignal();
    }
    await watch.close();
  },
});

function printSummary(io: CommandIo, s: TrainSummary): void {
  io.stdout.write(
    `test accuracy ${(100 * s.test_accuracy).toFixed(2)}%  ${s.train_samples_per_s} samples/s  params_sha256 ${s.params_sha256}\n`,
  );
}
