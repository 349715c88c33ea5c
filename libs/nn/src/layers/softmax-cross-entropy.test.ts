import { describe, expect, it } from 'vitest';
import { Rng } from '../rng.js';
import { argmaxRows, softmaxCrossEntropy } from './softmax-cross-entropy.js';
import { firstMismatch, numericGradient, randomFloats } from '../testing/numeric.js';

describe('softmaxCrossEntropy', () => {
  it('gives log(classes) per sample for zero logits', () => {
    const { lossSum } = softmaxCrossEntropy(null, new Float32Array(3 * 5), [0, 4, 2], 3, 5);
    expect(lossSum).toBeCloseTo(3 * Math.log(5), 12);
  });

  it('matches -log softmax computed by hand for one row', () => {
    const z = [1, 2, 3];
    const expected = Math.log(Math.exp(1) + Math.exp(2) + Math.exp(3)) - 1;
    expect(softmaxCrossEntropy(null, new Float32Array(z), [0], 1, 3).lossSum).toBeCloseTo(expected, 6);
  });

  it('gives p - onehot as the gradient of a hand-computed row', () => {
    const d = new Float32Array(2);
    softmaxCrossEntropy(d, new Float32Array([0, Math.log(3)]), [1], 1, 2);
    expect(Array.from(d).map((v) => +v.toFixed(6))).toEqual([0.25, -0.25]);
  });

  it('dlogits matches central differences of the summed loss', () => {
    const [batch, classes] = [6, 5];
    const rng = new Rng(31);
    const logits = randomFloats(rng, batch * classes, -3, 3);
    const labels = [0, 4, 2, 2, 1, 3];
    const d = new Float32Array(batch * classes);
    softmaxCrossEntropy(d, logits, labels, batch, classes);
    const numeric = numericGradient(() => softmaxCrossEntropy(null, logits, labels, batch, classes).lossSum, logits, 1e-2);
    expect(firstMismatch(d, numeric, 1e-3, 1e-2)).toBeNull();
  });

  it('is stable for logits of ±1000: finite loss and the exact gradient', () => {
    const d = new Float32Array(6);
    const logits = new Float32Array([1000, -1000, 0, -1000, 1000, 1000]);
    const { lossSum } = softmaxCrossEntropy(d, logits, [0, 0], 2, 3);
    // Row 0: label is the max, loss 0. Row 1: loss = log(2·e^1000) - (-1000) = 2000 + log 2.
    expect(lossSum).toBeCloseTo(2000 + Math.log(2), 3);
    expect(Array.from(d)).toEqual([0, 0, 0, -1, 0.5, 0.5]);
  });

  it('counts rows whose argmax is the label as correct', () => {
    const logits = new Float32Array([0.1, 0.9, 0.5, 0.2, 3, 1, 2, -1, 0, 0, 1, 0]);
    expect(softmaxCrossEntropy(null, logits, [1, 0, 0, 2], 4, 3).correct).toBe(2); // argmaxes 1, 1, 0, 1: rows 0 and 2
  });

  it('breaks ties in favour of the first maximal logit', () => {
    const logits = new Float32Array([2, 2, 1]);
    expect(softmaxCrossEntropy(null, logits, [0], 1, 3).correct).toBe(1);
    expect(softmaxCrossEntropy(null, logits, [1], 1, 3).correct).toBe(0);
  });

  it('overwrites dlogits rather than adding to it', () => {
    const d = new Float32Array([7, 7]);
    softmaxCrossEntropy(d, new Float32Array([0, 0]), [0], 1, 2);
    expect(Array.from(d)).toEqual([-0.5, 0.5]);
  });
});

describe('argmaxRows', () => {
  it('writes the first maximum of each row', () => {
    const out = [-1, -1, -1];
    argmaxRows(out, new Float32Array([1, 3, 3, 5, 0, -1, -2, -2, -3]), 3, 3);
    expect(out).toEqual([1, 0, 0]);
  });
});
