import { argmaxRows, softmaxCrossEntropy, type Model } from '@gradq/nn';
import { gatherBatch, type Split } from '@gradq/data';

export interface Evaluation {
  count: number;
  correct: number;
  lossSum: number;
  accuracy: number;
  loss: number; // mean
  /** confusion[label][predicted], when asked for. */
  confusion?: number[][];
}

const CHUNK = 1000;
/** Activation floats one evaluation chunk may hold: 4 M (16 MB), so a convolutional model's chunks stay small. */
const CHUNK_ACTIVATIONS = 4 * 1024 * 1024;

/** Loss and accuracy of the model over a whole split, in chunks; with `confusion`, the confusion matrix too. */
export function evaluateSplit(model: Model, split: Split, options: { confusion?: boolean } = {}): Evaluation {
  const chunk = Math.max(1, Math.min(CHUNK, Math.floor(CHUNK_ACTIVATIONS / model.activationFloats), split.count));
  const x = new Float32Array(chunk * split.features);
  const y = new Uint8Array(chunk);
  const predicted = new Uint8Array(chunk);
  const identity = Uint32Array.from({ length: split.count }, (_, i) => i);
  const classes = model.classes;
  const confusion = options.confusion ? Array.from({ length: classes }, () => new Array<number>(classes).fill(0)) : undefined;
  let correct = 0;
  let lossSum = 0;
  for (let start = 0; start < split.count; start += chunk) {
    const end = Math.min(start + chunk, split.count);
    gatherBatch(split, identity, start, end, x, y);
    const logits = model.forward(x, end - start);
    const stats = softmaxCrossEntropy(null, logits, y, end - start, classes);
    correct += stats.correct;
    lossSum += stats.lossSum;
    if (confusion) {
      argmaxRows(predicted, logits, end - start, classes);
      for (let i = 0; i < end - start; i++) confusion[y[i]][predicted[i]]++;
    }
  }
  return { count: split.count, correct, lossSum, accuracy: correct / split.count, loss: lossSum / split.count, confusion };
}
