/** Loss and accuracy of a batch: the loss is a sum over samples (the caller divides once). */
export interface BatchStats {
  lossSum: number;
  correct: number;
}

/**
 * Fused, numerically stable softmax + cross-entropy, forward and backward in one pass.
 * logits is (batch, classes), labels is (batch); dlogits (batch, classes) receives p - onehot(label), the
 * gradient of the summed loss. Per sample: loss = log Σ exp(z - max) - (z_label - max).
 * `correct` counts rows whose first maximal logit is the label.
 */
export function softmaxCrossEntropy(
  dlogits: Float32Array | null,
  logits: Float32Array,
  labels: ArrayLike<number>,
  batch: number,
  classes: number,
): BatchStats {
  let lossSum = 0;
  let correct = 0;
  for (let i = 0; i < batch; i++) {
    const o = i * classes;
    let max = logits[o];
    let argmax = 0;
    for (let j = 1; j < classes; j++) {
      if (logits[o + j] > max) {
        max = logits[o + j];
        argmax = j;
      }
    }
    let sum = 0;
    for (let j = 0; j < classes; j++) sum += Math.exp(logits[o + j] - max);
    const label = labels[i];
    lossSum += Math.log(sum) - (logits[o + label] - max);
    if (argmax === label) correct++;
    if (dlogits !== null) {
      const inv = 1 / sum;
      for (let j = 0; j < classes; j++) dlogits[o + j] = Math.exp(logits[o + j] - max) * inv;
      dlogits[o + label] -= 1;
    }
  }
  return { lossSum, correct };
}

/** Index of the first maximum of each row of logits (batch, classes) into out. */
export function argmaxRows(out: { [i: number]: number }, logits: Float32Array, batch: number, classes: number): void {
  for (let i = 0; i < batch; i++) {
    const o = i * classes;
    let best = 0;
    for (let j = 1; j < classes; j++) if (logits[o + j] > logits[o + best]) best = j;
    out[i] = best;
  }
}
