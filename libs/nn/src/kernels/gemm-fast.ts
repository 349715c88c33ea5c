import { checkGemmShapes, type Gemm } from './gemm.js';

/**
 * The fast TypeScript GEMM. Two register-blocked kernels cover the forms a dense layer uses:
 *  - rowUpdate (nn, tn): row i of C is updated with eight rows of B at once,
 *    C[i,:] += a0·B[p0,:] + … + a7·B[p7,:], where p0… are the columns of the nonzero values of A's row i:
 *    one load and store of C per eight products, and zeros are never multiplied (input images are ~80% zero
 *    pixels and ReLU outputs about half). The order of the additions depends only on A's zero pattern.
 *  - dotBlock (nt, tt): 2×4 outputs at a time as dot products over contiguous rows.
 * Skipping a zero A value leaves C unchanged only when B is finite: with Inf/NaN in B the reference would
 * propagate NaN where this kernel does not (gradients are checked for finiteness where they enter).
 */
export const gemmFast: Gemm = (transA, transB, m, n, k, a, b, c, accumulate) => {
  checkGemmShapes(m, n, k, a, b, c);
  if (!accumulate) c.fill(0, 0, m * n);
  if (!transB) rowUpdate(m, n, k, a, transA ? 1 : k, transA ? m : 1, b, c);
  else dotBlock(m, n, k, a, transA ? 1 : k, transA ? m : 1, b, c);
};

// Scratch for rowUpdate: the nonzero A values of one row and the offsets of their B rows (grown, never per call).
let gatherValues = new Float32Array(1024);
let gatherOffsets = new Int32Array(1024);

/** C (m×n) += A·B, A(i,p) at a[i*si + p*sp], B row-major k×n. */
function rowUpdate(m: number, n: number, k: number, a: Float32Array, si: number, sp: number, b: Float32Array, c: Float32Array): void {
  if (gatherValues.length < k) {
    gatherValues = new Float32Array(k);
    gatherOffsets = new Int32Array(k);
  }
  const val = gatherValues;
  const off = gatherOffsets;
  for (let i = 0; i < m; i++) {
    const co = i * n;
    const ai = i * si;
    // Gather the nonzero A(i,·) with the offsets of the B rows they scale.
    let count = 0;
    for (let p = 0; p < k; p++) {
      const v = a[ai + p * sp];
      if (v !== 0) {
        val[count] = v;
        off[count] = p * n;
        count++;
      }
    }
    // Eight B rows per pass over C[i,:].
    let q = 0;
    for (; q + 8 <= count; q += 8) {
      const a0 = val[q], a1 = val[q + 1], a2 = val[q + 2], a3 = val[q + 3]; // prettier-ignore
      const a4 = val[q + 4], a5 = val[q + 5], a6 = val[q + 6], a7 = val[q + 7]; // prettier-ignore
      const b0 = off[q], b1 = off[q + 1], b2 = off[q + 2], b3 = off[q + 3]; // prettier-ignore
      const b4 = off[q + 4], b5 = off[q + 5], b6 = off[q + 6], b7 = off[q + 7]; // prettier-ignore
      for (let j = 0; j < n; j++) {
        c[co + j] +=
          a0 * b[b0 + j] + a1 * b[b1 + j] + a2 * b[b2 + j] + a3 * b[b3 + j] +
          a4 * b[b4 + j] + a5 * b[b5 + j] + a6 * b[b6 + j] + a7 * b[b7 + j]; // prettier-ignore
      }
    }
    for (; q < count; q++) {
      const a0 = val[q];
      const b0 = off[q];
      for (let j = 0; j < n; j++) c[co + j] += a0 * b[b0 + j];
    }
  }
}

/** C (m×n) += A·Bᵀ, A(i,p) at a[i*si + p*sp], B row-major n×k. */
function dotBlock(m: number, n: number, k: number, a: Float32Array, si: number, sp: number, b: Float32Array, c: Float32Array): void {
  const m2 = m - (m % 2);
  const n4 = n - (n % 4);
  for (let i = 0; i < m2; i += 2) {
    const ai0 = i * si;
    const ai1 = ai0 + si;
    for (let j = 0; j < n4; j += 4) {
      const bj0 = j * k;
      const bj1 = bj0 + k;
      const bj2 = bj1 + k;
      const bj3 = bj2 + k;
      let s00 = 0, s01 = 0, s02 = 0, s03 = 0, s10 = 0, s11 = 0, s12 = 0, s13 = 0; // prettier-ignore
      for (let p = 0; p < k; p++) {
        const x0 = a[ai0 + p * sp];
        const x1 = a[ai1 + p * sp];
        const y0 = b[bj0 + p];
        const y1 = b[bj1 + p];
        const y2 = b[bj2 + p];
        const y3 = b[bj3 + p];
        s00 += x0 * y0;
        s01 += x0 * y1;
        s02 += x0 * y2;
        s03 += x0 * y3;
        s10 += x1 * y0;
        s11 += x1 * y1;
        s12 += x1 * y2;
        s13 += x1 * y3;
      }
      const c0 = i * n + j;
      const c1 = c0 + n;
      c[c0] += s00;
      c[c0 + 1] += s01;
      c[c0 + 2] += s02;
      c[c0 + 3] += s03;
      c[c1] += s10;
      c[c1 + 1] += s11;
      c[c1 + 2] += s12;
      c[c1 + 3] += s13;
    }
    for (let j = n4; j < n; j++) {
      c[i * n + j] += dot(a, ai0, sp, b, j * k, k);
      c[(i + 1) * n + j] += dot(a, ai1, sp, b, j * k, k);
    }
  }
  for (let i = m2; i < m; i++) {
    for (let j = 0; j < n; j++) c[i * n + j] += dot(a, i * si, sp, b, j * k, k);
  }
}

function dot(a: Float32Array, ao: number, sp: number, b: Float32Array, bo: number, k: number): number {
  let s = 0;
  for (let p = 0; p < k; p++) s += a[ao + p * sp] * b[bo + p];
  return s;
}
