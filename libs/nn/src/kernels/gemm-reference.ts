import { checkGemmShapes, type Gemm } from './gemm.js';

/** The algorithmic reference: three loops, one dot product per output, summed in double precision. */
export const gemmReference: Gemm = (transA, transB, m, n, k, a, b, c, accumulate) => {
  checkGemmShapes(m, n, k, a, b, c);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let sum = 0;
      for (let p = 0; p < k; p++) {
        const av = transA ? a[p * m + i] : a[i * k + p];
        const bv = transB ? b[j * k + p] : b[p * n + j];
        sum += av * bv;
      }
      c[i * n + j] = accumulate ? c[i * n + j] + sum : sum;
    }
  }
};
