/** The constants of one Adam step, hoisted out of the loop over the parameters (see adam.ts for the formulas). */
export interface AdamConstants {
  invBatch: number; // 1 / batch: g = gradSum · invBatch
  l2: number; // Adam's L2 weight decay added to g (0 for AdamW)
  b1: number; // β1
  a1: number; // 1 - β1
  b2: number; // β2
  a2: number; // 1 - β2
  step: number; // lr / (1 - β1^t): lr times the bias correction of m
  invC2: number; // 1 / (1 - β2^t): the bias correction of v
  shrink: number; // AdamW's decoupled decay factor 1 - lr·wd (1 for Adam)
  eps: number;
}

const f32 = Math.fround;

/**
 * The reference Adam kernel: one loop over the n = p.length parameters in float32 arithmetic. The constants are
 * rounded to float32 first, and every operation's result is rounded to float32 (Math.fround) before the next one
 * uses it; +, -, ·, / and √ computed in double and rounded once give the correctly rounded float32 result, so this
 * is exactly what float32 hardware computes. p, gradSum, m, v are (n). adam.wasm reproduces it bit for bit.
 */
export function adamReference(p: Float32Array, gradSum: Float32Array, m: Float32Array, v: Float32Array, c: AdamConstants): void {
  const [invBatch, l2, b1, a1, b2, a2] = [f32(c.invBatch), f32(c.l2), f32(c.b1), f32(c.a1), f32(c.b2), f32(c.a2)];
  const [step, invC2, shrink, eps] = [f32(c.step), f32(c.invC2), f32(c.shrink), f32(c.eps)];
  const n = p.length;
  for (let i = 0; i < n; i++) {
    const pi = p[i];
    const g = f32(f32(gradSum[i] * invBatch) + f32(l2 * pi));
    const mi = f32(f32(b1 * m[i]) + f32(a1 * g));
    const vi = f32(f32(b2 * v[i]) + f32(f32(a2 * g) * g));
    m[i] = mi;
    v[i] = vi;
    const denom = f32(f32(Math.sqrt(f32(vi * invC2))) + eps);
    p[i] = f32(f32(pi * shrink) - f32(f32(step * mi) / denom));
  }
}
