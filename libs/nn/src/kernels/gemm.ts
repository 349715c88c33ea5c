/**
 * General matrix multiply on row-major Float32Arrays, the one kernel every layer is built on:
 *
 *   C (m×n) = op(A) (m×k) · op(B) (k×n)      (+ C when `accumulate`)
 *
 * op(A) is A (stored m×k) or Aᵀ (A stored k×m) when `transA`; likewise op(B) is B (k×n) or Bᵀ (B stored n×k).
 * Dense layers need three forms: forward X·W (nn), weight gradient Xᵀ·dY (tn) and input gradient dY·Wᵀ (nt).
 */
export type Gemm = (
  transA: boolean,
  transB: boolean,
  m: number,
  n: number,
  k: number,
  a: Float32Array,
  b: Float32Array,
  c: Float32Array,
  accumulate: boolean,
) => void;

/** Checks that the operands are large enough for the shapes; the kernels trust it. */
export function checkGemmShapes(m: number, n: number, k: number, a: Float32Array, b: Float32Array, c: Float32Array): void {
  // One check per size, not a loop over [name, value] pairs: this runs on every product, and allocates nothing.
  checkSize('m', m);
  checkSize('n', n);
  checkSize('k', k);
  if (a.length < m * k) throw new RangeError(`gemm: A holds ${a.length} values, needs ${m}×${k} = ${m * k}`);
  if (b.length < k * n) throw new RangeError(`gemm: B holds ${b.length} values, needs ${k}×${n} = ${k * n}`);
  if (c.length < m * n) throw new RangeError(`gemm: C holds ${c.length} values, needs ${m}×${n} = ${m * n}`);
}

function checkSize(name: string, v: number): void {
  if (!Number.isInteger(v) || v < 0) throw new RangeError(`gemm: ${name} must be a whole number >= 0, got ${v}`);
}
