import { describe, expect, it } from 'vitest';
import { configErrorOf } from '../testing/numeric.js';
import { makeSchedule, type ScheduleConfig } from './schedule.js';

describe('makeSchedule', () => {
  it.each([
    // base lr, config, step t, expected rate (hand-computed)
    [0.1, { kind: 'constant' }, 0, 0.1],
    [0.1, { kind: 'constant' }, 100_000, 0.1],
    [1, { kind: 'step', stepSize: 10, gamma: 0.5 }, 9, 1],
    [1, { kind: 'step', stepSize: 10, gamma: 0.5 }, 10, 0.5],
    [1, { kind: 'step', stepSize: 10, gamma: 0.5 }, 25, 0.25],
    [1, { kind: 'step', stepSize: 3 }, 3, 0.1], // gamma defaults to 0.1
    [2, { kind: 'exponential', gamma: 0.9 }, 0, 2],
    [2, { kind: 'exponential', gamma: 0.9 }, 2, 1.62], // 2·0.9²
    [1, { kind: 'cosine', totalSteps: 10 }, 0, 1], // starts at the base rate
    [1, { kind: 'cosine', totalSteps: 10 }, 5, 0.5], // midpoint: (1 + cos π/2)/2
    [1, { kind: 'cosine', totalSteps: 10 }, 10, 0], // ends at minLr = 0
    [1, { kind: 'cosine', totalSteps: 10, minLr: 0.1 }, 5, 0.55], // 0.1 + 0.9·0.5
    [1, { kind: 'cosine', totalSteps: 10, minLr: 0.1 }, 10, 0.1],
    [1, { kind: 'cosine', totalSteps: 10, minLr: 0.1 }, 15, 0.1], // stays at minLr after the end (cos 1.5π would give 0.55)
    [1, { kind: 'cosine', totalSteps: 4 }, 1, 0.8535533905932737], // (1 + cos π/4)/2
    [1, { kind: 'constant', warmupSteps: 4 }, 0, 0.25], // warm-up starts at lr/warmup
    [1, { kind: 'constant', warmupSteps: 4 }, 1, 0.5],
    [1, { kind: 'constant', warmupSteps: 4 }, 3, 1], // reaches lr on its last step
    [1, { kind: 'constant', warmupSteps: 4 }, 4, 1],
    [1, { kind: 'step', warmupSteps: 2, stepSize: 2, gamma: 0.5 }, 3, 1], // decay counts from the end of warm-up
    [1, { kind: 'step', warmupSteps: 2, stepSize: 2, gamma: 0.5 }, 4, 0.5],
    [1, { kind: 'cosine', warmupSteps: 2, totalSteps: 12 }, 2, 1], // cosine starts after the warm-up…
    [1, { kind: 'cosine', warmupSteps: 2, totalSteps: 12 }, 7, 0.5], // …its midpoint is halfway through the rest…
    [1, { kind: 'cosine', warmupSteps: 2, totalSteps: 12 }, 12, 0], // …and it ends at totalSteps
  ] as [number, ScheduleConfig, number, number][])('lr %s %j at t=%i is %s', (lr, config, t, expected) => {
    expect(makeSchedule(lr, config)(t)).toBeCloseTo(expected, 12);
  });

  it.each([
    [-1, { kind: 'constant' }, 'Invalid learning rate: -1'],
    [0, { kind: 'constant' }, 'Invalid learning rate: 0'],
    [Number.NaN, { kind: 'constant' }, 'Invalid learning rate: NaN'],
    [Infinity, { kind: 'constant' }, 'Invalid learning rate: Infinity'],
    [0.1, { kind: 'linear' }, 'unknown schedule "linear"'],
    [0.1, { kind: 'constant', warmupSteps: -1 }, 'Invalid warm-up steps: -1'],
    [0.1, { kind: 'constant', warmupSteps: 2.5 }, 'Invalid warm-up steps: 2.5'],
    [0.1, { kind: 'step' }, 'Invalid step size: 0'],
    [0.1, { kind: 'step', stepSize: 1.5 }, 'Invalid step size: 1.5'],
    [0.1, { kind: 'step', stepSize: 5, gamma: 0 }, 'Invalid decay factor: 0 '],
    [0.1, { kind: 'exponential', gamma: 1.5 }, 'Invalid decay factor: 1.5'],
    [0.1, { kind: 'cosine' }, 'Invalid cosine length: 0 steps'],
    [0.1, { kind: 'cosine', totalSteps: 5, warmupSteps: 5 }, 'Invalid cosine length: 5 steps (must exceed the 5 warm-up steps)'],
    [0.1, { kind: 'cosine', totalSteps: 4, warmupSteps: 5 }, 'Invalid cosine length: 4 steps'],
    [0.1, { kind: 'cosine', totalSteps: 10, minLr: 0.2 }, 'Invalid minimum learning rate: 0.2'],
    [0.1, { kind: 'cosine', totalSteps: 10, minLr: -0.01 }, 'Invalid minimum learning rate: -0.01'],
  ] as [number, ScheduleConfig, string][])('lr %s %j throws a ConfigError containing "%s"', (lr, config, text) => {
    expect(configErrorOf(() => makeSchedule(lr, config)).message).toContain(text);
  });
});
