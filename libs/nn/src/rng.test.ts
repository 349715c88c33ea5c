import { describe, expect, it } from 'vitest';
import { deriveSeed, Rng } from './rng.js';

const draws = (rng: Rng, n: number, f: (r: Rng) => number) => Array.from({ length: n }, () => f(rng));

describe('Rng', () => {
  it('produces the xoshiro128** reference outputs from the state [1, 2, 3, 4]', () => {
    const rng = new Rng(0);
    rng.setState([1, 2, 3, 4, Number.NaN]);
    // From the reference C code (Blackman & Vigna), recomputed independently in Python.
    expect(draws(rng, 6, (r) => r.nextUint32())).toEqual([11520, 0, 5927040, 70819200, 2031721883, 1637235492]);
  });

  it('expands seed 42 with splitmix32 into a fixed state (streams stay reproducible across versions)', () => {
    expect(new Rng(42).getState()).toEqual([939911724, 3948730756, 321366731, 3317318717, Number.NaN]);
  });

  it('is deterministic per seed and differs across seeds', () => {
    const a = draws(new Rng(42), 100, (r) => r.nextUint32());
    expect(draws(new Rng(42), 100, (r) => r.nextUint32())).toEqual(a);
    expect(draws(new Rng(43), 100, (r) => r.nextUint32())).not.toEqual(a);
    expect(draws(new Rng(42 + 2 ** 32), 100, (r) => r.nextUint32())).not.toEqual(a);
  });

  it('derives streams that depend on every key', () => {
    const first = (rng: Rng) => draws(rng, 4, (r) => r.nextUint32());
    expect(first(Rng.derive(7, 1, 2))).toEqual(first(Rng.derive(7, 1, 2)));
    expect(first(Rng.derive(7, 1, 2))).not.toEqual(first(Rng.derive(7, 2, 1)));
    expect(first(Rng.derive(7, 1))).not.toEqual(first(Rng.derive(8, 1)));
  });

  it('reseeds in place as a new generator of that seed starts (a pending spare normal dropped); deriveSeed folds keys as derive', () => {
    const rng = new Rng(5);
    rng.nextNormal(); // leaves a spare
    rng.reseed(42);
    expect(draws(rng, 6, (r) => r.nextNormal())).toEqual(draws(new Rng(42), 6, (r) => r.nextNormal()));
    const h = deriveSeed(deriveSeed(7 >>> 0, 1), 2);
    expect(draws(new Rng(h), 4, (r) => r.nextUint32())).toEqual(draws(Rng.derive(7, 1, 2), 4, (r) => r.nextUint32()));
    expect(() => rng.reseed(-1)).toThrow(/Invalid seed: -1/);
  });

  it('draws floats in [0, 1) with mean 0.5 and variance 1/12 over 100 000 draws', () => {
    const xs = draws(new Rng(1), 100_000, (r) => r.nextFloat());
    const mean = xs.reduce((s, x) => s + x, 0) / xs.length;
    const variance = xs.reduce((s, x) => s + (x - mean) ** 2, 0) / xs.length;
    expect(xs.every((x) => x >= 0 && x < 1)).toBe(true);
    expect(Math.abs(mean - 0.5)).toBeLessThan(0.005); // 5 standard errors
    expect(Math.abs(variance - 1 / 12)).toBeLessThan(0.002);
  });

  it('draws nextInt(6) in 0..5 with every value about equally often over 60 000 draws', () => {
    const counts = [0, 0, 0, 0, 0, 0];
    for (const v of draws(new Rng(2), 60_000, (r) => r.nextInt(6))) counts[v]++;
    expect(counts.reduce((a, b) => a + b)).toBe(60_000); // no value outside 0..5
    for (const c of counts) expect(Math.abs(c - 10_000)).toBeLessThan(500); // 5.5 standard deviations
  });

  it('has no modulo bias for n = 3·2^30 (a plain x % n would put half the draws below 2^30, not a third)', () => {
    const n = 3 * 2 ** 30;
    const xs = draws(new Rng(3), 30_000, (r) => r.nextInt(n));
    expect(xs.every((x) => Number.isInteger(x) && x >= 0 && x < n)).toBe(true);
    expect(xs.filter((x) => x < 2 ** 30).length / xs.length).toBeCloseTo(1 / 3, 1);
  });

  it('returns 0 for nextInt(1)', () => {
    expect(draws(new Rng(4), 10, (r) => r.nextInt(1))).toEqual(new Array(10).fill(0));
  });

  it.each([0, -3, 1.5, Number.NaN, 2 ** 32 + 1])('rejects nextInt(%s)', (n) => {
    expect(() => new Rng(0).nextInt(n)).toThrow(`Invalid range: ${n}`);
  });

  it('draws normals with mean 0, std 1 and symmetric tails over 100 000 draws', () => {
    const xs = draws(new Rng(5), 100_000, (r) => r.nextNormal());
    const mean = xs.reduce((s, x) => s + x, 0) / xs.length;
    const std = Math.sqrt(xs.reduce((s, x) => s + (x - mean) ** 2, 0) / xs.length);
    expect(Math.abs(mean)).toBeLessThan(0.016); // 5 standard errors
    expect(Math.abs(std - 1)).toBeLessThan(0.012);
    // P(|z| > 2) = 0.0455
    expect(xs.filter((x) => Math.abs(x) > 2).length / xs.length).toBeCloseTo(0.0455, 2);
  });

  it('shuffles into a permutation that is not the identity', () => {
    const a = new Rng(6).shuffle(Array.from({ length: 100 }, (_, i) => i));
    expect([...a].sort((x, y) => x - y)).toEqual(Array.from({ length: 100 }, (_, i) => i));
    expect(a).not.toEqual(Array.from({ length: 100 }, (_, i) => i));
  });

  it('shuffles typed arrays in place and returns them', () => {
    const a = Int32Array.from([5, 6, 7]);
    expect(new Rng(7).shuffle(a)).toBe(a);
    expect(Array.from(a).sort()).toEqual([5, 6, 7]);
  });

  it('gives each of the 24 orders of 4 items about equally often over 24 000 shuffles', () => {
    const rng = new Rng(8);
    const counts = new Map<string, number>();
    for (let i = 0; i < 24_000; i++) {
      const key = rng.shuffle([0, 1, 2, 3]).join('');
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
    expect(counts.size).toBe(24);
    for (const c of counts.values()) expect(Math.abs(c - 1000)).toBeLessThan(160); // 5 standard deviations
  });

  it('continues identically after getState/setState, including a pending spare normal', () => {
    const a = new Rng(9);
    a.nextNormal(); // leaves the second normal of the pair as the spare
    const state = a.getState();
    expect(Number.isNaN(state[4])).toBe(false);
    const next = (r: Rng) => [r.nextNormal(), r.nextUint32(), r.nextFloat(), r.nextInt(1000), r.nextNormal()];
    const expected = next(a);
    const b = new Rng(12345);
    b.setState(state);
    expect(next(b)).toEqual(expected);
  });

  it('getState returns a copy', () => {
    const rng = new Rng(10);
    const state = rng.getState();
    rng.nextUint32();
    expect(rng.getState()).not.toEqual(state);
  });

  it.each([[[1, 2, 3]], [[1, 2, 3, 4, 5, 6]], [[1, 2, 3, -4, Number.NaN]], [[1, 2, 3, 2 ** 32, Number.NaN]], [[1, 2, 3, 0.5, Number.NaN]]])(
    'setState rejects %j',
    (state) => {
      expect(() => new Rng(0).setState(state)).toThrow('Invalid RNG state');
    },
  );

  it.each([-1, 1.5, Number.NaN, Infinity, 2 ** 53])('rejects the seed %s', (seed) => {
    expect(() => new Rng(seed)).toThrow(RangeError);
    expect(() => new Rng(seed)).toThrow(`Invalid seed: ${seed}`);
  });

  it('accepts seeds 0 and 2^53 - 1', () => {
    expect(() => [new Rng(0), new Rng(2 ** 53 - 1)]).not.toThrow();
  });
});
