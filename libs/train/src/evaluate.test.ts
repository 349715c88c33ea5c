import { fileURLToPath } from 'node:url';
import { gatherBatch, limitSamples, loadDataset } from '@gradq/data';
import { Model } from '@gradq/nn';
import { describe, expect, it } from 'vitest';
import { evaluateSplit } from './evaluate.js';

const DATA = fileURLToPath(new URL('../../../../shared/data', import.meta.url));

describe('evaluateSplit', () => {
  it('finds the most confidently wrong predictions, as a softmax over the whole split at once does', async () => {
    const test = limitSamples((await loadDataset('mnist', { dataDir: DATA })).test, 2500); // more than one chunk
    const model = new Model('mlp:784-16-10', { seed: 7 });
    const result = evaluateSplit(model, test, { mistakes: 12, confusion: true });
    // The reference: every row's probabilities in float64, the wrong rows sorted by the predicted class's.
    const x = new Float32Array(test.count * test.features);
    const y = new Uint8Array(test.count);
    gatherBatch(
      test,
      Uint32Array.from({ length: test.count }, (_, i) => i),
      0,
      test.count,
      x,
      y,
    );
    const logits = model.forward(x, test.count);
    const wrong = [];
    for (let i = 0; i < test.count; i++) {
      const row = Array.from(logits.subarray(i * 10, i * 10 + 10));
      const predicted = row.indexOf(Math.max(...row));
      if (predicted === y[i]) continue;
      const exps = row.map((v) => Math.exp(v - row[predicted]));
      wrong.push({ index: i, label: y[i], predicted, probability: 1 / exps.reduce((a, b) => a + b, 0) });
    }
    wrong.sort((a, b) => b.probability - a.probability);
    expect(result.mistakes?.map((m) => [m.index, m.label, m.predicted])).toEqual(
      wrong.slice(0, 12).map((m) => [m.index, m.label, m.predicted]),
    );
    for (const [i, m] of (result.mistakes ?? []).entries()) expect(m.probability).toBeCloseTo(wrong[i].probability, 6);
    expect(test.count - result.correct).toBe(wrong.length);
    expect(result.confusion?.flat().reduce((a, b) => a + b, 0)).toBe(test.count);
  });
});
