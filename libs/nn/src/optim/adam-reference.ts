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

/**
 * The reference Adam kernel: one loop over the n = p.length parameters, computing in double precision and
 * rounding to float32 once on each store. p, gradSum, m, v are (n). adam.wasm reproduces it bit for bit.
 */
export function adamReference(p: Float32Array, gradSum: Float32Array, m: Float32Array, v: Float32Array, c: AdamConstants): void {
  const { invBatch, l2, b1, a1, b2, a2, step, invC2, shrink, eps } = c;
  const n = p.length;
  for (let i = 0; i < n; i++) {
    const pi = p[i];
    const g = gradSum[i] * invBatch + l2 * pi;
    const mi = b1 * m[i] + a1 * g;
    const vi = b2 * v[i] + a2 * g * g;
    m[i] = mi;
    v[i] = vi;
    p[i] = pi * shrink - (step * mi) / (Math.sqrt(vi * invC2) + eps);
  }
}
