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
  /** The wrong predictions made with the highest probability, most confident first, when asked for. */
  mistakes?: Mistake[];
}

/** A test sample the model got wrong: its index in the split, its label, the predicted class and its probability. */
export interface Mistake {
  index: number;
  label: number;
  predicted: number;
  probability: number;
}

const CHUNK = 1000;
/** Activation floats one evaluation chunk may hold: 4 M (16 MB), so a convolutional model's chunks stay small. */
const CHUNK_ACTIVATIONS = 4 * 1024 * 1024;

/**
 * Loss and accuracy of the model over a whole split, in chunks; with `confusion`, the confusion matrix too; with
 * `mistakes: N`, the N most confidently wrong predictions (softmax probability of the predicted class).
 */
export function evaluateSplit(model: Model, split: Split, options: { confusion?: boolean; mistakes?: number } = {}): Evaluation {
  const chunk = Math.max(1, Math.min(CHUNK, Math.floor(CHUNK_ACTIVATIONS / model.activationFloats), split.count));
  const x = new Float32Array(chunk * split.features);
  const y = new Uint8Array(chunk);
  const predicted = new Uint8Array(chunk);
  const identity = Uint32Array.from({ length: split.count }, (_, i) => i);
  const classes = model.classes;
  const confusion = options.confusion ? Array.from({ length: classes }, () => new Array<number>(classes).fill(0)) : undefined;
  const keep = options.mistakes ?? 0;
  const mistakes: Mistake[] | undefined = keep > 0 ? [] : undefined;
  let correct = 0;
  let lossSum = 0;
  for (let start = 0; start < split.count; start += chunk) {
    const end = Math.min(start + chunk, split.count);
    gatherBatch(split, identity, start, end, x, y);
    const logits = model.forward(x, end - start);
    const stats = softmaxCrossEntropy(null, logits, y, end - start, classes);
    correct += stats.correct;
    lossSum += stats.lossSum;
    if (confusion || mistakes) argmaxRows(predicted, logits, end - start, classes);
    if (confusion) for (let i = 0; i < end - start; i++) confusion[y[i]][predicted[i]]++;
    if (mistakes) {
      for (let i = 0; i < end - start; i++) {
        if (predicted[i] === y[i]) continue;
        const probability = softmaxAt(logits, i * classes, classes, predicted[i]);
        if (mistakes.length === keep && probability <= mistakes[keep - 1].probability) continue;
        let at = mistakes.length;
        while (at > 0 && mistakes[at - 1].probability < probability) at--;
        mistakes.splice(at, 0, { index: start + i, label: y[i], predicted: predicted[i], probability });
        if (mistakes.length > keep) mistakes.pop();
      }
    }
  }
  return { count: split.count, correct, lossSum, accuracy: correct / split.count, loss: lossSum / split.count, confusion, mistakes };
}

/** The softmax probability of class `k` in the row of `classes` logits at `offset` (max subtracted first). */
function softmaxAt(logits: Float32Array, offset: number, classes: number, k: number): number {
  let max = -Infinity;
  for (let j = 0; j < classes; j++) max = Math.max(max, logits[offset + j]);
  let sum = 0;
  for (let j = 0; j < classes; j++) sum += Math.exp(logits[offset + j] - max);
  return Math.exp(logits[offset + k] - max) / sum;
}
