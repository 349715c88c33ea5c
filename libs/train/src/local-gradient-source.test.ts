import { fileURLToPath } from 'node:url';
import { epochOrder, loadDataset, planStep, type Dataset } from '@gradq/data';
import { beforeAll, describe, expect, it } from 'vitest';
import type { StepPlan } from './gradient-source.js';
import { LocalGradientSource } from './local-gradient-source.js';
import type { TrainConfig } from './train-config.js';
import { setUpTraining } from './training-setup.js';

const DATA = fileURLToPath(new URL('../../../../shared/data', import.meta.url));

let mnist: Dataset;
beforeAll(async () => {
  mnist = await loadDataset('mnist', { dataDir: DATA });
});

function setup(shards: number) {
  const config: TrainConfig = {
    dataset: 'mnist', model: 'mlp:784-64-10', init: 'he', epochs: 1, batch: 64, shards, optimizer: 'adam', lr: 0.001,
    schedule: 'cosine', warmup: 0, seed: 1, trainSamples: 4096, augmentShift: 0, checkpointEvery: 200, resume: false,
  }; // prettier-ignore
  return setUpTraining(config, mnist);
}

function plan(order: Uint32Array, step: number, batch: number, shards: number): StepPlan {
  return { ...planStep(order.length, batch, shards, step), globalStep: step, order };
}

describe('LocalGradientSource', () => {
  it('gives the same summed gradient with 1 and 4 shards at every step (1e-5 relative)', async () => {
    // Train with 1 shard; at each step also compute the 4-shard sum from the same parameters.
    const one = setup(1);
    const four = setup(4);
    const src1 = new LocalGradientSource(one.model, one.train, { seed: 1, shift: 0 });
    const src4 = new LocalGradientSource(four.model, four.train, { seed: 1, shift: 0 });
    const order = epochOrder(1, 0, one.train.count);
    const sum1 = new Float32Array(one.model.params.length);
    const sum4 = new Float32Array(sum1.length);
    let worst = 0;
    for (let s = 0; s < 30; s++) {
      four.model.params.set(one.model.params);
      sum1.fill(0);
      sum4.fill(0);
      const a = await src1.step(plan(order, s, 64, 1), one.model.params, sum1);
      const b = await src4.step(plan(order, s, 64, 4), four.model.params, sum4);
      expect(b.correct).toBe(a.correct);
      expect(b.lossSum).toBeCloseTo(a.lossSum, 3);
      let maxDiff = 0;
      let maxAbs = 0;
      for (let i = 0; i < sum1.length; i++) {
        maxDiff = Math.max(maxDiff, Math.abs(sum1[i] - sum4[i]));
        maxAbs = Math.max(maxAbs, Math.abs(sum1[i]));
      }
      worst = Math.max(worst, maxDiff / maxAbs);
      one.optimizer.step(one.model.params, sum1, 64);
    }
    expect(worst).toBeLessThan(1e-5);
    expect(worst).toBeGreaterThanOrEqual(0);
  });

  it('leaves nothing out: a last partial batch with empty shards sums the samples it has', async () => {
    const s = setup(4);
    const src = new LocalGradientSource(s.model, s.train, { seed: 1, shift: 0 });
    const order = epochOrder(1, 0, 4096);
    // 4096 samples in batches of 5: the last batch has one sample, so three of its four shards are empty.
    const last = Math.ceil(4096 / 5) - 1;
    const p = { ...planStep(4096, 5, 4, last), globalStep: last, order };
    expect(p.batchSize).toBe(1);
    expect(p.shards.filter(([a, b]) => a === b)).toHaveLength(3);
    const sum = new Float32Array(s.model.params.length);
    const stats = await src.step(p, s.model.params, sum);
    expect(stats.lossSum).toBeGreaterThan(0);
    expect(sum.some((v) => v !== 0)).toBe(true);
  });

  it('int8: a source restored from another one’s residuals continues with the same bits; without them it differs', async () => {
    const order = epochOrder(1, 0, 4096);
    const steps = async (src: LocalGradientSource, params: Float32Array, from: number, to: number): Promise<string[]> => {
      const sums: string[] = [];
      for (let t = from; t < to; t++) {
        const sum = new Float32Array(params.length);
        await src.step(plan(order, t, 64, 4), params, sum);
        sums.push(Buffer.from(sum.buffer).toString('base64'));
      }
      return sums;
    };
    const a = setup(4);
    const b = setup(4);
    const c = setup(4);
    const d = setup(4);
    const int8 = (s: ReturnType<typeof setup>) => new LocalGradientSource(s.model, s.train, { seed: 1, shift: 0 }, undefined, 'int8');
    const [srcA, srcB, srcC, srcD] = [int8(a), int8(b), int8(c), int8(d)];
    const whole = await steps(srcA, a.model.params, 0, 6);
    const head = await steps(srcB, b.model.params, 0, 3);
    expect(head).toEqual(whole.slice(0, 3));
    await srcC.restoreResiduals(await srcB.residualState(), 3);
    expect(await steps(srcC, c.model.params, 3, 6)).toEqual(whole.slice(3));
    expect(await steps(srcD, d.model.params, 3, 6), 'fresh residuals').not.toEqual(whole.slice(3));
    const none = setup(4);
    const plain = await steps(new LocalGradientSource(none.model, none.train, { seed: 1, shift: 0 }), none.model.params, 0, 6);
    expect(plain, 'int8 changes the sums').not.toEqual(whole);
  });
});
