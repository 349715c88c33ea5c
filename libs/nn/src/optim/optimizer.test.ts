import { describe, expect, it } from 'vitest';
import { ConfigError } from '../config-error.js';
import { configErrorOf } from '../testing/numeric.js';
import { Rng } from '../rng.js';
import { randomFloats } from '../testing/numeric.js';
import { addIntoReference, firstNonFiniteReference } from '../kernels/vec-reference.js';
import { addInto, firstNonFinite } from '../kernels/vector-ops.js';
import { Model } from '../model.js';
import { parseModelSpec } from '../model-spec.js';
import { Adam } from './adam.js';
import { makeOptimizer } from './make-optimizer.js';
import type { OptimizerHyper } from './optimizer.js';
import { makeSchedule, type LrSchedule } from './schedule.js';
import { Momentum, Sgd } from './sgd.js';

const constant = (lr: number): LrSchedule => makeSchedule(lr, { kind: 'constant' });

/** Runs `name` on one parameter starting at 1 and returns the parameter after each [gradSum, batch] step. */
function trajectory(name: string, hyper: OptimizerHyper, lr: number, steps: [number, number][]): number[] {
  const opt = makeOptimizer(name, 1, constant(lr), hyper);
  const p = new Float32Array([1]);
  return steps.map(([gradSum, batch]) => {
    opt.step(p, new Float32Array([gradSum]), batch);
    return p[0];
  });
}

// Hand-computed, one parameter p = 1, g = gradSum / batch (PyTorch's formulas, see sgd.ts and adam.ts).
describe('optimizer updates', () => {
  it.each([
    // name, hyper, lr, [gradSum, batch] per step, p after each step
    ['sgd', {}, 0.1, [[4, 2]], [0.8]], // g = 2: 1 - 0.1·2
    ['sgd', { weightDecay: 0.1 }, 0.1, [[4, 2]], [0.79]], // g = 2 + 0.1·1: 1 - 0.21
    [
      'sgd',
      {},
      0.1,
      [
        [1, 1],
        [-3, 1],
      ],
      [0.9, 1.2],
    ], // 0.9 - 0.1·(-3)
    [
      'momentum',
      { momentum: 0.9 },
      0.1,
      [
        [1, 1],
        [1, 1],
      ],
      [0.9, 0.71],
    ], // v = 1, 1.9: 0.9 - 0.19
    [
      'momentum',
      { momentum: 0.9, weightDecay: 0.5 },
      0.1,
      [
        [2, 2],
        [2, 2],
      ],
      [0.85, 0.5725],
    ], // g = 1.5, v = 1.5; g = 1 + 0.5·0.85 = 1.425, v = 2.775
    [
      'nesterov',
      { momentum: 0.9 },
      0.1,
      [
        [1, 1],
        [1, 1],
      ],
      [0.81, 0.539],
    ], // 1 - 0.1·(1 + 0.9·1); 0.81 - 0.1·(1 + 0.9·1.9)
    [
      'momentum',
      { momentum: 0 },
      0.1,
      [
        [1, 1],
        [1, 1],
      ],
      [0.9, 0.8],
    ], // μ = 0 is plain SGD
    // Adam step 1: m = 0.2, v = 0.004, m̂ = 2, v̂ = 4: 1 - 0.1·2/(2 + 1e-8) (without bias correction it would move by 0.316)
    // step 2 (g = 1): m = 0.28, v = 0.004996, m̂ = 0.28/0.19, v̂ = 0.004996/0.001999: 0.9 - 0.1·1.473684/1.580902
    [
      'adam',
      {},
      0.1,
      [
        [2, 1],
        [1, 1],
      ],
      [0.9000000005, 0.8067820372],
    ],
    ['adam', { weightDecay: 0.1 }, 0.1, [[2, 1]], [0.9000000005]], // L2 goes into g, and Adam's first step is ±lr whatever g
    [
      'adamw',
      { weightDecay: 0.1 },
      0.1,
      [
        [2, 1],
        [1, 1],
      ],
      [0.89, 0.7878820372],
    ], // p·(1 - 0.01) then Adam's step
    ['adamw', {}, 0.1, [[2, 1]], [0.899]], // default decay 0.01: 1·(1 - 0.001) - 0.1
  ] as [string, OptimizerHyper, number, [number, number][], number[]][])(
    '%s %o lr=%s steps %j gives %j',
    (name, hyper, lr, steps, expected) => {
      const got = trajectory(name, hyper, lr, steps);
      expect(got.length).toBe(expected.length);
      got.forEach((p, i) => expect(p).toBeCloseTo(expected[i], 6));
    },
  );

  it('takes each step at the rate the schedule gives for its step number', () => {
    const opt = new Sgd(1, makeSchedule(0.1, { kind: 'step', stepSize: 1, gamma: 0.5 }));
    const p = new Float32Array([1]);
    expect(opt.lr).toBe(0.1);
    opt.step(p, new Float32Array([1]), 1);
    opt.step(p, new Float32Array([1]), 1);
    expect([p[0], opt.t, opt.lr]).toEqual([Math.fround(Math.fround(0.9) - 0.05), 2, 0.025]);
  });

  it('updates every parameter independently', () => {
    const opt = new Sgd(3, constant(0.5));
    const p = new Float32Array([1, 2, 3]);
    opt.step(p, new Float32Array([2, 0, -2]), 2);
    expect(Array.from(p)).toEqual([0.5, 2, 3.5]);
  });

  it('names the optimizers it builds', () => {
    const names = ['sgd', 'momentum', 'nesterov', 'adam', 'adamw'].map((n) => makeOptimizer(n, 1, constant(0.1)).name);
    expect(names).toEqual(['sgd', 'momentum', 'nesterov', 'adam', 'adamw']);
  });
});

describe('optimizer checks', () => {
  it.each([
    ['momentum -0.1', 'Invalid momentum: -0.1', () => makeOptimizer('momentum', 1, constant(0.1), { momentum: -0.1 })],
    ['momentum 1', 'Invalid momentum: 1 ', () => makeOptimizer('nesterov', 1, constant(0.1), { momentum: 1 })],
    ['beta1 = 1', 'Invalid beta1: 1 ', () => makeOptimizer('adam', 1, constant(0.1), { beta1: 1 })],
    ['beta2 NaN', 'Invalid beta2: NaN', () => makeOptimizer('adam', 1, constant(0.1), { beta2: Number.NaN })],
    ['eps 0', 'Invalid epsilon: 0 ', () => makeOptimizer('adam', 1, constant(0.1), { eps: 0 })],
    ['eps Infinity', 'Invalid epsilon: Infinity', () => makeOptimizer('adamw', 1, constant(0.1), { eps: Infinity })],
    ['weight decay -1', 'Invalid weight decay: -1', () => makeOptimizer('sgd', 1, constant(0.1), { weightDecay: -1 })],
    ['weight decay -1 on adamw', 'Invalid weight decay: -1', () => makeOptimizer('adamw', 1, constant(0.1), { weightDecay: -1 })],
    ['unknown optimizer', 'unknown optimizer "adagrad"', () => makeOptimizer('adagrad', 1, constant(0.1))],
    ['schedule gives 0', 'schedule gave 0 at step 0', () => new Sgd(1, () => 0).step(new Float32Array(1), new Float32Array(1), 1)],
    ['schedule gives NaN', 'gave NaN', () => new Sgd(1, () => Number.NaN).step(new Float32Array(1), new Float32Array(1), 1)],
  ] as [string, string, () => unknown][])('%s throws a ConfigError containing "%s"', (_what, text, fn) => {
    expect(configErrorOf(fn).message).toContain(text);
  });

  it.each([
    [2, 1, 1, 'optimizer for 1 parameters got 2 parameters and 1 gradients'],
    [1, 2, 1, 'optimizer for 1 parameters got 1 parameters and 2 gradients'],
    [1, 1, 0, 'batch must be a whole number >= 1, got 0'],
    [1, 1, 2.5, 'batch must be a whole number >= 1, got 2.5'],
  ])('step with %i params, %i grads, batch %s throws "%s"', (np, ng, batch, text) => {
    const opt = new Sgd(1, constant(0.1));
    expect(() => opt.step(new Float32Array(np), new Float32Array(ng), batch)).toThrow(text);
    expect(opt.t).toBe(0);
  });
});

describe('optimizer state', () => {
  it.each(['sgd', 'momentum', 'nesterov', 'adam', 'adamw'])('%s continues identically after getState/setState', (name) => {
    const grads = [
      [0.5, -1, 2],
      [1, 1, -0.25],
      [-2, 0.5, 0],
      [0.1, 0.2, 0.3],
    ].map((g) => new Float32Array(g));
    const a = makeOptimizer(name, 3, constant(0.05), { weightDecay: 0.01 });
    const pa = new Float32Array([1, -1, 0.5]);
    a.step(pa, grads[0], 2);
    a.step(pa, grads[1], 2);
    const b = makeOptimizer(name, 3, constant(0.05), { weightDecay: 0.01 });
    b.setState(a.getState());
    const pb = pa.slice();
    for (const g of grads.slice(2)) {
      a.step(pa, g, 2);
      b.step(pb, g, 2);
    }
    expect(Array.from(pb)).toEqual(Array.from(pa));
    expect(b.t).toBe(4);
  });

  it('stateInto copies the buffers into the given arrays, and refuses arrays that do not fit', () => {
    const opt = new Momentum(2, constant(0.1));
    opt.step(new Float32Array(2), Float32Array.of(1, -2), 1);
    const into = [new Float32Array(2)];
    const state = opt.stateInto(into);
    expect(state.buffers[0]).toBe(into[0]);
    expect(Array.from(into[0])).toEqual(Array.from(opt.getState().buffers[0]));
    expect(state).toMatchObject({ name: 'momentum', t: 1 });
    expect(opt.stateBuffers).toBe(1);
    expect(() => opt.stateInto([new Float32Array(3)])).toThrow('momentum state into buffers of [3] values, expected 1 of 2');
  });

  it('getState copies the buffers', () => {
    const opt = new Momentum(1, constant(0.1));
    const state = opt.getState();
    state.buffers[0][0] = 5;
    expect(opt.getState().buffers[0][0]).toBe(0);
    expect(state).toMatchObject({ name: 'momentum', t: 0, hyper: { momentum: 0.9, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0 } });
  });

  it.each([
    ['another optimizer', 'saved optimizer is "adam", not "adamw"', () => new Adam(2, constant(0.1)).getState()],
    ['nesterov into adamw', 'saved optimizer is "nesterov"', () => new Momentum(2, constant(0.1), {}, true).getState()],
    ['a negative step', 'saved optimizer step -1', () => ({ ...new Adam(2, constant(0.1), {}, true).getState(), t: -1 })],
    ['a fractional step', 'saved optimizer step 1.5', () => ({ ...new Adam(2, constant(0.1), {}, true).getState(), t: 1.5 })],
    ['buffers of another size', 'buffers of [3, 3] values, expected 2 of 2', () => new Adam(3, constant(0.1), {}, true).getState()],
    [
      'one buffer too few',
      'buffers of [2] values, expected 2 of 2',
      () => ({ ...new Adam(2, constant(0.1), {}, true).getState(), buffers: [new Float32Array(2)] }),
    ],
  ] as [string, string, () => ReturnType<Adam['getState']>][])('setState rejects %s: "%s"', (_what, text, state) => {
    const opt = new Adam(2, constant(0.1), {}, true);
    expect(configErrorOf(() => opt.setState(state())).message).toContain(text);
    expect(opt.t).toBe(0);
  });
});

describe('Adam kernels', () => {
  // name, size, hyper: lengths not multiples of 2 or 4 exercise the WebAssembly tail.
  it.each([
    [false, 1, {}],
    [false, 7, {}],
    [false, 4099, {}],
    [false, 101_770, {}],
    [false, 1001, { weightDecay: 0.01 }],
    [true, 1001, {}],
    [true, 3, { weightDecay: 0.1, beta1: 0.8, beta2: 0.99, eps: 1e-6 }],
    [true, 101_770, { weightDecay: 0.01 }],
  ] as [boolean, number, OptimizerHyper][])(
    'WebAssembly gives the reference bits (adamw=%s, %i values, %j) over 5 steps',
    (decoupled, size, hyper) => {
      const rng = new Rng(size);
      const schedule = (t: number) => 0.01 / (1 + t); // a different rate every step
      const fast = new Adam(size, schedule, hyper, decoupled, 'wasm');
      const ref = new Adam(size, schedule, hyper, decoupled, 'reference');
      const pFast = randomFloats(rng, size, -2, 2, 0.1);
      const pRef = pFast.slice();
      for (let step = 0; step < 5; step++) {
        const g = randomFloats(rng, size, -50, 50, 0.2);
        const batch = [64, 1, 37, 64, 5][step];
        fast.step(pFast, g, batch);
        ref.step(pRef, g, batch);
      }
      const bits = (x: Float32Array) => new Uint32Array(x.buffer, x.byteOffset, x.length);
      expect(bits(pFast)).toEqual(bits(pRef));
      const [sf, sr] = [fast.getState(), ref.getState()];
      sf.buffers.forEach((b, i) => expect(bits(b)).toEqual(bits(sr.buffers[i])));
    },
  );

  it('restores its moments from a saved state into the WebAssembly kernel', () => {
    const ref = new Adam(5, constant(0.1), {}, false, 'reference');
    const p = new Float32Array([1, 2, 3, 4, 5]);
    ref.step(p, new Float32Array([1, -1, 2, -2, 0]), 1);
    const fast = new Adam(5, constant(0.1), {}, false, 'wasm');
    fast.setState(ref.getState());
    const q = p.slice();
    ref.step(p, new Float32Array([0.5, 0.5, -1, 3, 1]), 1);
    fast.step(q, new Float32Array([0.5, 0.5, -1, 3, 1]), 1);
    expect(Array.from(q)).toEqual(Array.from(p));
    expect(fast.getState().buffers[0].buffer).not.toBe(fast.getState().buffers[0].buffer);
  });

  it.each(['adam', 'adamw', 'sgd', 'momentum'])(
    '%s: summing shards into gradientSum() and stepping with it gives the bits of an ordinary array',
    (name) => {
      const size = 1001;
      const rng = new Rng(3);
      const schedule = (t: number) => 0.01 / (1 + t);
      const fast = makeOptimizer(name, size, schedule);
      const plain = makeOptimizer(name, size, schedule);
      const sum = fast.gradientSum();
      expect([sum.length, sum.every((v) => Object.is(v, 0)), fast.gradientSum()]).toEqual([size, true, sum]);
      const pFast = randomFloats(rng, size, -2, 2, 0.1);
      const pPlain = pFast.slice();
      const bits = (x: Float32Array) => Array.from(new Uint32Array(x.buffer, x.byteOffset, x.length));
      for (let step = 0; step < 4; step++) {
        sum.fill(0);
        const want = new Float32Array(size);
        for (let shard = 0; shard < 3; shard++) {
          const g = randomFloats(rng, size, -50, 50, 0.2);
          addInto(sum, g);
          addIntoReference(want, g);
        }
        expect(bits(sum)).toEqual(bits(want));
        expect(firstNonFinite(sum)).toBe(firstNonFiniteReference(want));
        fast.step(pFast, sum, 48);
        plain.step(pPlain, want, 48);
        expect(bits(pFast)).toEqual(bits(pPlain));
        expect(bits(sum)).toEqual(bits(want)); // the step leaves the sum as it was
      }
    },
  );

  it.each(['adam', 'adamw'])(
    '%s: a model in modelStorage() trains to the bits of a model in its own arrays, shard sums and steps copying nothing',
    (name) => {
      const spec = 'mlp:13-9-3';
      const size = Model.parameterCount(parseModelSpec(spec));
      const schedule = (t: number) => 0.01 / (1 + t);
      const [homed, plain] = [makeOptimizer(name, size, schedule), makeOptimizer(name, size, schedule)];
      const storage = homed.modelStorage();
      expect(storage).toBeDefined();
      const a = new Model(spec, { seed: 5, storage });
      const b = new Model(spec, { seed: 5 });
      expect([a.params, a.grads]).toEqual([storage?.params, storage?.grads]);
      const rng = new Rng(8);
      const bits = (x: Float32Array) => Array.from(new Uint32Array(x.buffer, x.byteOffset, x.length));
      for (let step = 0; step < 3; step++) {
        const [sumA, sumB] = [homed.gradientSum(), new Float32Array(size)];
        sumA.fill(0);
        for (let shard = 0; shard < 2; shard++) {
          const x = randomFloats(rng, 4 * 13, 0, 1, 0.5);
          const labels = [0, 1, 2, shard];
          a.gradientOf(x, labels, 4);
          b.gradientOf(x, labels, 4);
          addInto(sumA, a.grads);
          addInto(sumB, b.grads);
        }
        homed.step(a.params, sumA, 8);
        plain.step(b.params, sumB, 8);
      }
      expect(bits(a.params)).toEqual(bits(b.params));
      expect(bits(homed.getState().buffers[1])).toEqual(bits(plain.getState().buffers[1]));
    },
  );

  it('has no model storage with the reference kernel or for SGD', () => {
    expect([
      new Adam(3, constant(0.1), {}, false, 'reference').modelStorage(),
      makeOptimizer('sgd', 3, constant(0.1)).modelStorage(),
    ]).toEqual([undefined, undefined]);
    expect(() => new Model('mlp:2-2', { storage: { params: new Float32Array(5), grads: new Float32Array(6) } })).toThrow(
      'model mlp:2-2 has 6 parameters; its storage holds 5 parameters and 6 gradients',
    );
  });

  it('rejects an unknown kernel with its name', () => {
    expect(configErrorOf(() => new Adam(1, constant(0.1), {}, false, 'gpu' as 'wasm')).message).toContain('unknown Adam kernel "gpu"');
  });
});

it('ConfigError is an Error named ConfigError', () => {
  const e = configErrorOf(() => makeOptimizer('x', 1, constant(1)));
  expect([e instanceof Error, e.name]).toEqual([true, 'ConfigError']);
  expect(e).toBeInstanceOf(ConfigError);
});
