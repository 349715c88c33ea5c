import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { defineCommand, transferProgress, UsageError } from '@gradq/cli';
import { loadDataset } from '@gradq/data';
import { decodeModel } from '@gradq/nn';
import { checkModelFits, evaluateSplit } from '@gradq/train';
import { REPORT_MISTAKES, REPORT_PNG, REPORT_WIDTH, writeEvalReport } from '../eval/eval-report.js';
import { formatEvaluation } from '../eval/format-evaluation.js';
import { EVAL_FLAGS } from '../train/train-flags.js';

export const evalCommand = defineCommand({
  summary: 'test accuracy, per-class accuracy and confusion matrix of a saved model',
  usage: 'gradq eval --model FILE [--dataset D] [--data-dir ROOT] [--report DIR]',
  flags: EVAL_FLAGS,
  async run(flags, io) {
    const file = flags.model;
    if (file === undefined) throw new UsageError('gradq eval: --model FILE is required (a file saved by gradq train --out)');
    let bytes: Uint8Array;
    try {
      bytes = readFileSync(file);
    } catch (e) {
      throw new UsageError(`--model ${file}: cannot read it (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
    }
    const { model, verified } = decodeModel(bytes, file);
    if (!verified)
      io.stderr.write(`note: ${file} is a model file of format version 1, without a checksum: it cannot be checked for damage\n`);
    const dataset = await loadDataset(flags.dataset, { dataDir: flags['data-dir'], progress: transferProgress(io.stderr) });
    const { rows, cols } = dataset.test;
    checkModelFits(model, { name: dataset.name, rows, cols, classes: dataset.classNames.length });
    const result = evaluateSplit(model, dataset.test, { confusion: true, mistakes: flags.report === undefined ? 0 : REPORT_MISTAKES });
    if (flags.report !== undefined) {
      const input = {
        dataset: dataset.name,
        model: model.name,
        modelFile: file,
        classNames: dataset.classNames,
        evaluation: result,
        test: dataset.test,
      };
      const page = await writeEvalReport(flags.report, input);
      io.stderr.write(`report written to ${page}\n`);
      // A picture of the page, where Chromium is: the page itself needs none. playwright-core is loaded only here,
      // so that other gradq commands (a worker above all) do not pay for it at startup (~45 MB of RSS).
      const png = join(flags.report, REPORT_PNG);
      try {
        const { renderPng } = await import('../render/chromium.js');
        await renderPng(page, png, { width: REPORT_WIDTH });
        io.stderr.write(`and rendered to ${png}\n`);
      } catch (e) {
        io.stderr.write(`note: ${png} not written: ${(e as Error).message.split('\n')[0]}\n`);
      }
    }
    delete result.mistakes;
    if (flags.json) {
      io.stdout.write(`${JSON.stringify({ dataset: dataset.name, model: model.name, ...result, classes: dataset.classNames })}\n`);
    } else io.stdout.write(formatEvaluation(dataset.name, dataset.classNames, result));
  },
});
