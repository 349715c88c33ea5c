// Throughput of the three GEMMs and of one training step per GEMM, on the built library (dist/).
// Usage: cd /work/main && npx tsc -b libs/nn/tsconfig.lib.json && node libs/nn/wasm/bench.mjs
import { gemmFast, gemmReference, gemmWasm, gemmWasmSkipZeros, Model, Rng, WASM_KERNEL } from '../dist/index.js';
import { createGemmWasm } from '../dist/kernels/gemm-wasm.js';

const KERNELS = { gemmReference, gemmFast, gemmWasm, 'gemmWasm(simd)': createGemmWasm('simd'), gemmWasmSkipZeros };
const rng = new Rng(1);

/** Values in [-1, 1), a fraction `zeros` of them exactly 0. */
function floats(length, zeros = 0) {
  const out = new Float32Array(length);
  for (let i = 0; i < length; i++) out[i] = rng.nextFloat() < zeros ? 0 : 2 * rng.nextFloat() - 1;
  return out;
}

/** Best seconds per call of fn over `rounds` timed rounds of about 0.2 s each, after a warm-up. */
function timeBest(fn, rounds = 5) {
  let calls = 1;
  for (let t0 = performance.now(); performance.now() - t0 < 100; calls *= 2) for (let i = 0; i < calls; i++) fn();
  let best = Infinity;
  for (let r = 0; r < rounds; r++) {
    const t0 = performance.now();
    for (let i = 0; i < calls; i++) fn();
    best = Math.min(best, (performance.now() - t0) / 1000 / calls);
  }
  return best;
}

const fmt = (x, d = 1) => x.toFixed(d).padStart(9);
console.log(`gemmWasm build: ${WASM_KERNEL}; Node ${process.versions.node}`);

// The three products of a 784→128 dense layer with batch 64.
const M = 64, K = 784, N = 128; // prettier-ignore
const CASES = [
  ['nn  X·W  (X 80% zeros)', false, false, M, N, K, floats(M * K, 0.8), floats(K * N)],
  ['tn  Xᵀ·dY', true, false, K, N, M, floats(M * K, 0.8), floats(M * N)],
  ['nt  dY·Wᵀ', false, true, M, K, N, floats(M * N), floats(K * N)],
];
console.log(
  `\nGFLOP/s (2·m·n·k per call), 64×784×128 shapes\n${'case'.padEnd(26)}${Object.keys(KERNELS)
    .map((k) => k.padStart(15))
    .join('')}`,
);
for (const [name, ta, tb, m, n, k, a, b] of CASES) {
  const c = new Float32Array(m * n);
  const row = Object.values(KERNELS).map((g) => (2 * m * n * k) / timeBest(() => g(ta, tb, m, n, k, a, b, c, false)) / 1e9);
  console.log(name.padEnd(26) + row.map((x) => fmt(x, 2).padStart(15)).join(''));
}

// One forwardBackward of mlp:784-128-10 on MNIST-like input (80% zero pixels).
console.log(
  `\nModel.forwardBackward mlp:784-128-10, samples/s\n${'batch'.padEnd(26)}${Object.keys(KERNELS)
    .map((k) => k.padStart(15))
    .join('')}`,
);
for (const batch of [64, 512]) {
  const x = floats(batch * 784, 0.8).map(Math.abs);
  const labels = Array.from({ length: batch }, (_, i) => i % 10);
  const row = Object.values(KERNELS).map((gemm) => {
    const model = new Model('mlp:784-128-10', { seed: 1, gemm });
    return batch / timeBest(() => model.forwardBackward(x, labels, batch), 3);
  });
  console.log(String(batch).padEnd(26) + row.map((x) => fmt(x, 0).padStart(15)).join(''));
}
