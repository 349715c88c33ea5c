import { readFileSync } from 'node:fs';
import { defineCommand, UsageError } from '@gradq/cli';
import { DATASET_NAMES, DataError, decodeImage, getDatasetInfo, sampleStyle, toSample, type ImageSample } from '@gradq/data';
import { decodeModel, unitFloats } from '@gradq/nn';
import { checkModelFits } from '@gradq/train';
import { PREDICT_FLAGS } from './predict-command-flags.js';

/** One image's prediction, as printed by --json. */
export interface Prediction {
  file: string;
  class: number;
  name: string;
  /** Whether the image was dark on light and so was inverted. */
  inverted: boolean;
  /** The `--top` most probable classes, highest first. */
  top: { class: number; name: string; p: number }[];
  /** One probability per class. */
  probabilities: number[];
}

export const predictCommand = defineCommand({
  summary: 'classify PNG or JPEG images with a saved model: class name and top probabilities per image',
  usage: 'gradq predict --model FILE [--dataset D] [--top K] [--json] IMAGE…',
  flags: PREDICT_FLAGS,
  operands: true,
  async run(flags, io, images) {
    const file = flags.model;
    if (file === undefined) throw new UsageError('gradq predict: --model FILE is required (a file saved by gradq train --out)');
    if (images.length === 0) throw new UsageError('gradq predict: give one or more PNG or JPEG files to classify');
    let bytes: Uint8Array;
    try {
      bytes = readFileSync(file);
    } catch (e) {
      throw new UsageError(`--model ${file}: cannot read it (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
    }
    const { model, meta, verified } = decodeModel(bytes, file);
    if (!verified)
      io.stderr.write(`note: ${file} is a model file of format version 1, without a checksum: it cannot be checked for damage\n`);
    const dataset = flags.dataset ?? trainedOn(meta, file);
    const { classNames } = getDatasetInfo(dataset);
    const style = sampleStyle(dataset);
    checkModelFits(model, { name: dataset, rows: style.size, cols: style.size, classes: classNames.length });
    const top = Math.min(flags.top, classNames.length);
    const x = new Float32Array(model.inputSize);
    const predictions: Prediction[] = [];
    const errors: { file: string; error: string }[] = [];
    for (const image of images) {
      let sample: ImageSample;
      try {
        sample = toSample(decodeImage(readImage(image), image), style, image);
      } catch (e) {
        if (!(e instanceof DataError)) throw e;
        errors.push({ file: image, error: e.message });
        continue;
      }
      unitFloats(sample.pixels, x);
      const probabilities = softmax(model.forward(x, 1));
      const ranked = probabilities.map((p, c) => ({ class: c, name: classNames[c], p })).sort((a, b) => b.p - a.p || a.class - b.class);
      const prediction = {
        file: image,
        class: ranked[0].class,
        name: ranked[0].name,
        inverted: sample.inverted,
        top: ranked.slice(0, top),
        probabilities,
      };
      if (flags.json) predictions.push(prediction);
      else io.stdout.write(`${formatPrediction(prediction)}\n`);
    }
    if (flags.json) io.stdout.write(`${JSON.stringify({ model: model.name, dataset, predictions, errors })}\n`);
    // One `gradq: error:` line per bad file, after the predictions: the last is thrown, for main to print it the same
    // way and exit with code 2.
    for (const e of errors.slice(0, -1)) io.stderr.write(`gradq: error: ${e.error}\n`);
    if (errors.length > 0) throw new DataError(errors[errors.length - 1].error);
  },
});

/** `seven.png: 7 (7 98.1%, 1 1.0%, 9 0.4%)` */
export function formatPrediction(p: Prediction): string {
  return `${p.file}: ${p.name} (${p.top.map((t) => `${t.name} ${(100 * t.p).toFixed(1)}%`).join(', ')})`;
}

/** Probabilities of one row of logits: exp(z − max) / Σ exp(z − max), in float64. */
export function softmax(logits: ArrayLike<number>): number[] {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) max = Math.max(max, logits[i]);
  const e = Array.from(logits, (z) => Math.exp(z - max));
  const sum = e.reduce((s, v) => s + v, 0);
  return e.map((v) => v / sum);
}

/** The dataset a model file was trained on: `dataset` of a model saved by --out, `config.dataset` of a checkpoint. */
function trainedOn(meta: Record<string, unknown>, file: string): string {
  const config = meta.config;
  const named = meta.dataset ?? (typeof config === 'object' && config !== null ? (config as Record<string, unknown>).dataset : undefined);
  const use = `pass --dataset ${DATASET_NAMES.join(' or ')}`;
  if (named === undefined) throw new UsageError(`--model ${file}: the file does not say which dataset it was trained on; ${use}`);
  if (typeof named !== 'string' || !(DATASET_NAMES as readonly string[]).includes(named)) {
    throw new UsageError(`--model ${file}: trained on ${JSON.stringify(named)}, a dataset this gradq does not know; ${use}`);
  }
  return named;
}

/** The bytes of an image file; DataError naming it when it cannot be read. */
function readImage(file: string): Uint8Array {
  try {
    return readFileSync(file);
  } catch (e) {
    throw new DataError(`${file}: cannot read it (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
}
