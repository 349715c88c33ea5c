import { describe, expect, it } from 'vitest';
import { reluBackward, reluForward } from './relu.js';
import { Rng } from '../rng.js';
import { dotLoss, firstMismatch, numericGradient, randomFloats } from '../testing/numeric.js';

describe('reluForward', () => {
  it('sets negative values to 0 and keeps the others', () => {
    const out = new Float32Array(4);
    reluForward(out, new Float32Array([-2, -0.5, 0, 3]), 4);
    expect(Array.from(out)).toEqual([0, 0, 0, 3]);
  });

  it('propagates NaN', () => {
    const out = new Float32Array(1);
    reluForward(out, new Float32Array([Number.NaN]), 1);
    expect(out[0]).toBeNaN();
  });

  it('works in place and only on the first n values', () => {
    const x = new Float32Array([-1, 2, -3]);
    reluForward(x, x, 2);
    expect(Array.from(x)).toEqual([0, 2, -3]);
  });
});

describe('reluBackward', () => {
  it('passes the gradient where the output is positive and zeroes it elsewhere (also at 0)', () => {
    const dx = new Float32Array(3);
    reluBackward(dx, new Float32Array([5, 6, 7]), new Float32Array([1, 0, 0.5]), 3);
    expect(Array.from(dx)).toEqual([5, 0, 7]);
  });

  it('works in place', () => {
    const d = new Float32Array([5, 6]);
    reluBackward(d, d, new Float32Array([0, 2]), 2);
    expect(Array.from(d)).toEqual([0, 6]);
  });

  it('matches central differences of Σ r·relu(x) away from the kink', () => {
    const eps = 1e-2;
    const rng = new Rng(21);
    // Values in ±[0.05, 1]: never within 2·eps of 0.
    const x = Float32Array.from(randomFloats(rng, 40, 0.05, 1), (v, i) => (i % 3 === 0 ? -v : v));
    const r = randomFloats(rng, 40);
    const out = new Float32Array(40);
    const loss = () => {
      reluForward(out, x, 40);
      return dotLoss(r, out);
    };
    loss();
    const dx = new Float32Array(40);
    reluBackward(dx, r, out, 40);
    expect(firstMismatch(dx, numericGradient(loss, x, eps), 1e-4, 1e-3)).toBeNull();
  });
});
