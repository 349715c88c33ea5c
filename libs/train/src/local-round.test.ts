import { Model, makeOptimizer, makeSchedule } from '@gradq/nn';
import { epochOrder, gatherBatch, planStep, type Split } from '@gradq/data';
import { describe, expect, it } from 'vitest';
import type { StepPlan } from './gradient-source.js';
import { freshReplicaState, OuterOptimizer, replicaRound, roundEnd, sumDeltas } from './local-round.js';
import { ShardInputs } from './shard-gradient.js';
import { parseSyncMode } from './sync-mode.js';

// A tiny synthetic split: 4x4 images, 10 classes.
function tinySplit(count: number): Split {
  const features = 16;
  const pixels = new Uint8Array(count * features);
  const labels = new Uint8Array(count);
  for (let i = 0; i < count; i++) {
    labels[i] = (i * 7) % 10;
    for (let f = 0; f < features; f++) pixels[i * features + f] = (i * 31 + f * 17 + labels[i] * 13) % 256;
  }
  return { count, rows: 4, cols: 4, features, pixels, labels };
}

const SPEC = 'mlp:16-8-10';
const LR = 0.1;

function plans(split: Split, batch: number, shards: number, first: number, end: number): StepPlan[] {
  const order = epochOrder(3, 0, split.count);
  const out: StepPlan[] = [];
  for (let s = first; s < end; s++) out.push({ ...planStep(split.count, batch, shards, s), globalStep: s, order });
  return out;
}

/** K replicas × H inner SGD steps then averaging, with a straightforward float64 loop over a fresh model's gradients. */
function referenceRound(split: Split, steps: StepPlan[], shards: number, theta: Float32Array): Float64Array {
  const model = new Model(SPEC, { seed: 1 });
  const mean = new Float64Array(theta.length);
  for (let k = 0; k < shards; k++) {
    const p = Float64Array.from(theta);
    for (const plan of steps) {
      const [start, end] = plan.shards[k];
      const n = end - start;
      const x = new Float32Array(n * split.features);
      const y = new Uint8Array(n);
      gatherBatch(split, plan.order, start, end, x, y);
      model.params.set(p); // rounds to float32, as the replica's parameters are
      model.gradientOf(x, y, n);
      for (let i = 0; i < p.length; i++) p[i] = Math.fround(model.params[i]) - LR * (model.grads[i] / n);
    }
    for (let i = 0; i < p.length; i++) mean[i] += (theta[i] - p[i]) / shards;
  }
  const out = new Float64Array(theta.length);
  for (let i = 0; i < out.length; i++) out[i] = theta[i] - mean[i];
  return out;
}

function runRound(split: Split, steps: StepPlan[], shards: number, theta: Float32Array, name = 'sgd') {
  const model = new Model(SPEC, { seed: 2 });
  const opt = makeOptimizer(name, model.params.length, makeSchedule(LR, { kind: 'constant', warmupSteps: 0 }));
  const inputs = new ShardInputs();
  const results = [];
  for (let k = 0; k < shards; k++) {
    results.push(replicaRound(model, opt, split, steps, k, theta, freshReplicaState(opt), inputs, { seed: 3, shift: 0 }));
  }
  return results;
}

describe('local SGD round', () => {
  it('K=3 replicas × H=4 inner SGD steps then plain averaging match a straightforward loop (1e-6)', () => {
    const split = tinySplit(200);
    const theta = new Model(SPEC, { seed: 1 }).params.slice();
    const steps = plans(split, 48, 3, 0, 4);
    const results = runRound(split, steps, 3, theta);
    const sum = new Float32Array(theta.length);
    const { replicas } = sumDeltas(results, sum);
    expect(replicas).toBe(3);
    const params = theta.slice();
    new OuterOptimizer(params.length, { lr: 1, momentum: 0 }).step(params, sum, replicas);
    const ref = referenceRound(split, steps, 3, theta);
    let worst = 0;
    for (let i = 0; i < params.length; i++) worst = Math.max(worst, Math.abs(params[i] - ref[i]));
    expect(worst).toBeLessThan(1e-6);
    // The round moved the parameters (a reference that did nothing would not pass).
    expect(Math.max(...params.map((v, i) => Math.abs(v - theta[i])))).toBeGreaterThan(1e-3);
  });

  it('H=1, SGD, averaging is the sync step with the mean of shard means (equal shards: close, not claimed bitwise)', () => {
    const split = tinySplit(200);
    const theta = new Model(SPEC, { seed: 1 }).params.slice();
    const steps = plans(split, 40, 4, 0, 1);
    const sum = new Float32Array(theta.length);
    const { replicas } = sumDeltas(runRound(split, steps, 4, theta), sum);
    const local = theta.slice();
    new OuterOptimizer(local.length, { lr: 1, momentum: 0 }).step(local, sum, replicas);
    const model = new Model(SPEC, { seed: 1 });
    const x = new Float32Array(40 * 16);
    const y = new Uint8Array(40);
    gatherBatch(split, steps[0].order, 0, 40, x, y);
    model.gradientOf(x, y, 40);
    for (let i = 0; i < local.length; i++) expect(Math.abs(local[i] - (theta[i] - LR * (model.grads[i] / 40)))).toBeLessThan(1e-6);
  });

  it('outer Nesterov: v = μv + Δ; θ -= lr(Δ + μv), by hand over two rounds', () => {
    const outer = new OuterOptimizer(2, { lr: 0.7, momentum: 0.9 });
    const p = new Float32Array([1, -2]);
    outer.step(p, new Float32Array([0.2, 0.4]), 2); // Δ = [0.1, 0.2], v = Δ
    expect(p[0]).toBeCloseTo(1 - 0.7 * (0.1 + 0.9 * 0.1), 6);
    outer.step(p, new Float32Array([0.2, 0.4]), 2); // v = 0.9·0.1 + 0.1 = 0.19
    expect(p[0]).toBeCloseTo(1 - 0.7 * 0.19 - 0.7 * (0.1 + 0.9 * 0.19), 6);
    expect(p[1]).toBeCloseTo(-2 - 0.7 * 0.38 - 0.7 * (0.2 + 0.9 * 0.38), 6);
  });

  it('a replica recomputed from the same θ and saved state gives the same bits (momentum inner optimizer)', () => {
    const split = tinySplit(200);
    const theta = new Model(SPEC, { seed: 1 }).params.slice();
    const a = runRound(split, plans(split, 48, 2, 0, 3), 2, theta, 'momentum');
    const b = runRound(split, plans(split, 48, 2, 0, 3), 2, theta, 'momentum');
    expect(Buffer.from(a[1].delta.buffer).equals(Buffer.from(b[1].delta.buffer))).toBe(true);
    expect(a[1].state.t).toBe(3);
    expect(a[1].state.buffers[0].some((v) => v !== 0)).toBe(true);
  });

  it('written into given buffers (a worker’s payload), Δ and the Adam state are the bits of new arrays', () => {
    const split = tinySplit(200);
    const theta = new Model(SPEC, { seed: 1 }).params.slice();
    const steps = plans(split, 48, 2, 0, 3);
    const made = runRound(split, steps, 2, theta, 'adam');
    const model = new Model(SPEC, { seed: 2 });
    const opt = makeOptimizer('adam', model.params.length, makeSchedule(LR, { kind: 'constant', warmupSteps: 0 }));
    const n = theta.length;
    const payload = new Float32Array(3 * n).fill(Number.NaN); // Δ, m, v: every value must be written
    const into = { delta: payload.subarray(0, n), buffers: [payload.subarray(n, 2 * n), payload.subarray(2 * n)] };
    const r = replicaRound(model, opt, split, steps, 1, theta, freshReplicaState(opt), new ShardInputs(), { seed: 3, shift: 0 }, into);
    expect(r.delta).toBe(into.delta);
    expect(r.state.buffers[0]).toBe(into.buffers[0]);
    const bytes = (a: Float32Array): Buffer => Buffer.from(a.buffer, a.byteOffset, a.byteLength);
    expect(bytes(r.delta).equals(bytes(made[1].delta))).toBe(true);
    made[1].state.buffers.forEach((b, i) => expect(bytes(r.state.buffers[i]).equals(bytes(b))).toBe(true));
    expect(r.state.t).toBe(made[1].state.t);
    expect(() =>
      replicaRound(
        model,
        opt,
        split,
        steps,
        1,
        theta,
        freshReplicaState(opt),
        new ShardInputs(),
        { seed: 3, shift: 0 },
        {
          delta: into.delta,
          buffers: [into.buffers[0]],
        },
      ),
    ).toThrow(`adam state into buffers of [${n}] values, expected 2 of ${n}`);
    // Refused before computing: the model still holds the replica's end from the call above.
    expect(bytes(model.params).equals(bytes(theta))).toBe(false);
    const before = Float32Array.from(model.params);
    expect(() =>
      replicaRound(
        model,
        opt,
        split,
        steps,
        1,
        theta,
        freshReplicaState(opt),
        new ShardInputs(),
        { seed: 3, shift: 0 },
        {
          delta: new Float32Array(n - 1),
          buffers: into.buffers,
        },
      ),
    ).toThrow(`Δ into ${n - 1} values, θ has ${n}`);
    expect(bytes(model.params).equals(bytes(before))).toBe(true);
  });

  it('rounds never cross an epoch end', () => {
    expect(roundEnd(0, 8, 10)).toBe(8);
    expect(roundEnd(8, 8, 10)).toBe(10);
    expect(roundEnd(10, 8, 10)).toBe(18);
  });

  it('parses sync modes and refuses bad ones with one clear error', () => {
    expect(parseSyncMode('sync')).toEqual({ kind: 'sync' });
    expect(parseSyncMode('local:8')).toEqual({ kind: 'local', h: 8 });
    expect(() => parseSyncMode('local:0')).toThrow(/local:0: H "0" is not a whole number >= 1/);
    expect(() => parseSyncMode('local:x')).toThrow(/H "x"/);
    expect(() => parseSyncMode('foo')).toThrow(/unknown sync mode "foo" \(use sync or local:H/);
  });
});
