import { fileURLToPath } from 'node:url';
import { epochOrder, limitSamples, loadSplit, type Split } from '@gradq/data';
import { Model } from '@gradq/nn';
import { beforeAll, describe, expect, it } from 'vitest';
import { shardGradient, ShardInputs } from './shard-gradient.js';

const DATA = fileURLToPath(new URL('../../../../shared/data', import.meta.url));
const SPEC = 'mlp:784-32-10';

let train: Split;
let order: Uint32Array;
beforeAll(async () => {
  train = limitSamples(await loadSplit('mnist', 'train', { dataDir: DATA }), 256);
  order = epochOrder(5, 2, train.count);
});

describe('shardGradient', () => {
  it('sums per-sample gradients: shard [0, 40) equals [0, 17) plus [17, 40) (float32 rounding only)', () => {
    const model = new Model(SPEC, { seed: 3 });
    const inputs = new ShardInputs();
    const whole = shardGradient(model, train, order, 0, 40, inputs);
    const g = model.grads.slice();
    const a = shardGradient(model, train, order, 0, 17, inputs);
    const ga = model.grads.slice();
    const b = shardGradient(model, train, order, 17, 40, inputs);
    expect(a.correct + b.correct).toBe(whole.correct);
    expect(a.lossSum + b.lossSum).toBeCloseTo(whole.lossSum, 3);
    let worst = 0;
    for (let i = 0; i < g.length; i++) worst = Math.max(worst, Math.abs(ga[i] + model.grads[i] - g[i]));
    expect(worst).toBeLessThan(1e-4);
    expect(g.some((v) => v !== 0)).toBe(true);
  });

  it('starts from zero gradients, so a shard computed twice gives the same bits', () => {
    const model = new Model(SPEC, { seed: 3 });
    const inputs = new ShardInputs();
    shardGradient(model, train, order, 100, 164, inputs);
    const first = model.grads.slice();
    shardGradient(model, train, order, 100, 164, inputs);
    expect(model.grads).toEqual(first);
  });

  it('gives the same bits whatever buffers were used before (larger shards, other samples)', () => {
    const fresh = new Model(SPEC, { seed: 3 });
    shardGradient(fresh, train, order, 30, 50, new ShardInputs());
    const used = new Model(SPEC, { seed: 3 });
    const inputs = new ShardInputs();
    shardGradient(used, train, order, 0, 200, inputs);
    shardGradient(used, train, order, 30, 50, inputs);
    expect(used.grads).toEqual(fresh.grads);
  });

  it('leaves zero gradients and zero stats for an empty shard', () => {
    const model = new Model(SPEC, { seed: 3 });
    const inputs = new ShardInputs();
    shardGradient(model, train, order, 0, 10, inputs);
    expect(shardGradient(model, train, order, 10, 10, inputs)).toEqual({ lossSum: 0, correct: 0 });
    expect(model.grads.every((v) => v === 0)).toBe(true);
  });
});
