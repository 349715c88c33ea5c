// Compares the model and the optimizers with values computed once by an independent NumPy implementation
// (fixtures/make_fixtures.py, float64). Inputs are multiples of 1/256, so both sides start from the same numbers.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { gemmFast } from './kernels/gemm-fast.js';
import { gemmReference } from './kernels/gemm-reference.js';
import { gemmWasm } from './kernels/gemm-wasm.js';
import { Model } from './model.js';
import { makeOptimizer } from './optim/make-optimizer.js';
import type { OptimizerHyper } from './optim/optimizer.js';
import { firstMismatch } from './testing/numeric.js';

interface MlpFixture {
  spec: string;
  batch: number;
  x: number[];
  labels: number[];
  params: number[];
  logits: number[];
  lossSum: number;
  correct: number;
  grads: number[];
}

interface OptimizerFixture {
  batch: number;
  params: number[];
  gradSums: number[][];
  cases: { name: string; hyper: OptimizerHyper; lrs: number[]; paramsAfter: number[][]; buffers: number[][] }[];
}

function load<T>(name: string): T {
  return JSON.parse(readFileSync(new URL(`../fixtures/${name}`, import.meta.url), 'utf8')) as T;
}

// float32 against float64: 1e-6 absolute plus 1e-5 relative.
const ABS = 1e-6;
const REL = 1e-5;

const mlp = load<MlpFixture>('mlp_forward_backward.json');
const optim = load<OptimizerFixture>('optimizers.json');

describe.each([
  ['gemmFast', gemmFast],
  ['gemmReference', gemmReference],
  ['gemmWasm', gemmWasm],
] as const)('Model (%s) matches NumPy', (_name, gemm) => {
  const setup = () => {
    const model = new Model(mlp.spec, { gemm });
    expect(model.params.length).toBe(mlp.params.length);
    model.params.set(mlp.params);
    return { model, x: new Float32Array(mlp.x) };
  };

  it('forward gives the logits', () => {
    const { model, x } = setup();
    expect(firstMismatch(model.forward(x, mlp.batch).slice(0, mlp.logits.length), mlp.logits, ABS, REL)).toBeNull();
  });

  it('forwardBackward gives the summed loss, the correct count and the gradient of every W and b', () => {
    const { model, x } = setup();
    model.zeroGrads();
    const stats = model.forwardBackward(x, mlp.labels, mlp.batch);
    expect(stats.lossSum).toBeCloseTo(mlp.lossSum, 5);
    expect(stats.correct).toBe(mlp.correct);
    expect(firstMismatch(model.grads, mlp.grads, ABS, REL)).toBeNull();
  });
});

describe('optimizers match NumPy over 3 steps', () => {
  it.each(optim.cases.map((c) => [c.name, c.hyper, c.lrs, c] as const))('%s %o with lrs %j', (name, hyper, lrs, c) => {
    const opt = makeOptimizer(name, optim.params.length, (t) => lrs[t], hyper);
    const p = new Float32Array(optim.params);
    optim.gradSums.forEach((g, step) => {
      opt.step(p, new Float32Array(g), optim.batch);
      expect(firstMismatch(p, c.paramsAfter[step], ABS, REL), `after step ${step + 1}`).toBeNull();
    });
    const state = opt.getState();
    expect(state.t).toBe(3);
    expect(state.buffers.length).toBe(c.buffers.length);
    state.buffers.forEach((b, i) => expect(firstMismatch(b, c.buffers[i], ABS, REL), `buffer ${i}`).toBeNull());
  });
});
