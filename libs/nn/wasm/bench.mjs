// Throughput of the three GEMMs and of one training step per GEMM, on the built library (dist/); then the time of
// the WebAssembly kernel alone (no copies in and out) on the products of the models' dense layers, optionally beside
// another build of it (e.g. the committed one before a change) in the same process, alternating, for a fair ratio.
// Usage: cd /work/main && npx tsc -b libs/nn/tsconfig.lib.json && node libs/nn/wasm/bench.mjs [--baseline=DIR] [--only=TEXT] [MNIST_DIR]
//   DIR        holds another gemm-relaxed.wasm (and gemm-simd.wasm) to time against the one in wasm/
//   TEXT       times only the kernel-alone products whose name contains TEXT (e.g. "b16 mlp"), nothing else
//   MNIST_DIR  holds train-images-idx3-ubyte.gz: the first layers then multiply real images (else ~80% random zeros)
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { gemmFast, gemmReference, gemmWasm, gemmWasmSkipZeros, Model, Rng, WASM_KERNEL } from '../dist/index.js';
import { createGemmWasm } from '../dist/kernels/gemm-wasm.js';

const args = process.argv.slice(2);
const baselineDir = args.find((a) => a.startsWith('--baseline='))?.slice('--baseline='.length);
const only = args.find((a) => a.startsWith('--only='))?.slice('--only='.length);
const mnistDir = args.find((a) => !a.startsWith('--'));

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

/** The GFLOP/s of the whole Gemms (copies included) and the samples/s of a training step with each. */
function wholeGemms() {
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
}
if (only === undefined) wholeGemms();

// ---- The kernel alone on the models' dense-layer products -------------------------------------------------------
//
// Per product the export the model's gemm (gemmWasmSkipZeros) runs: gemmSkipZeros when B is not transposed (it
// switches to the dense kernel itself when more than 60% of A is nonzero), else gemm. Zero fractions of A are
// those measured in training on MNIST at batch 16 (after 150 Adam steps): images 80%, hidden ReLU outputs 30%
// (mlp:784-128-10), 40% / 45% (the default mlp:784-256-128-10's 256 / 128), 35% / 50% (lenet's 512 / 128), 60% /
// 75% (convnet's 9216 / 128); dY·Wᵀ multiplies the ReLU-masked dY.

const WASM_DIR = new URL('.', import.meta.url).pathname;
const FILE = { 'relaxed-simd': 'gemm-relaxed.wasm', simd: 'gemm-simd.wasm' }[WASM_KERNEL];

/** A Float32Array view of `memory` and the exports of the gemm build at `path`, instantiated over it. */
function loadGemm(path) {
  const memory = new WebAssembly.Memory({ initial: 1 });
  const wasm = new WebAssembly.Instance(new WebAssembly.Module(readFileSync(path)), { env: { memory } }).exports;
  return { memory, wasm };
}

/** A function that runs one product on `build`, its operands copied in once, laid out as gemm-wasm.ts does. */
function kernelCall({ memory, wasm }, transA, transB, m, n, k, a, b) {
  const sparse = !transB;
  const align16 = (x) => (x + 15) & ~15;
  const aAt = align16(wasm.scratch() + (sparse ? wasm.skipZerosBytes(m, n, k) : wasm.packedBytes(n, k)));
  const bAt = align16(aAt + 4 * m * k);
  const cAt = align16(bAt + 4 * k * n);
  const end = cAt + 4 * m * n;
  if (end > memory.buffer.byteLength) memory.grow(Math.ceil((end - memory.buffer.byteLength) / 65536));
  const heap = new Float32Array(memory.buffer);
  heap.set(a, aAt >>> 2);
  heap.set(b, bAt >>> 2);
  const ta = transA ? 1 : 0;
  return sparse ? () => wasm.gemmSkipZeros(ta, m, n, k, aAt, bAt, cAt, 1) : () => wasm.gemm(ta, 1, m, n, k, aAt, bAt, cAt, 1);
}

/** Median µs per call of each fn over 9 rounds of ~30 ms, the fns' rounds alternating, after a warm-up. */
function timeMedians(fns) {
  const calls = fns.map((fn) => {
    let c = 1;
    for (let t0 = performance.now(); performance.now() - t0 < 30; c *= 2) for (let i = 0; i < c; i++) fn();
    return c;
  });
  const rounds = fns.map(() => []);
  for (let r = 0; r < 9; r++) {
    fns.forEach((fn, f) => {
      const t0 = performance.now();
      for (let i = 0; i < calls[f]; i++) fn();
      rounds[f].push(((performance.now() - t0) * 1000) / calls[f]);
    });
  }
  return rounds.map((r) => r.sort((x, y) => x - y)[4]);
}

let images = null;
if (mnistDir) {
  const bytes = gunzipSync(readFileSync(join(mnistDir, 'train-images-idx3-ubyte.gz'))).subarray(16, 16 + 64 * 784);
  images = Float32Array.from(bytes, (v) => v / 255);
}
/** A (batch×784) input: MNIST's first images when given, else values with 80% zeros. */
const inputs = (batch) => (images ? images.slice(0, batch * 784) : floats(batch * 784, 0.8).map(Math.abs));

/**
 * The products of a dense layer in→out at `batch` with these zero fractions of x and dY (x given or random): x·W,
 * xᵀ·dY and, unless dyZeros is null (the input layer), dY·Wᵀ.
 */
function denseProducts(layer, batch, inDim, outDim, xZeros, dyZeros, x = floats(batch * inDim, xZeros).map(Math.abs)) {
  const dy = floats(batch * outDim, dyZeros ?? 0);
  const w = floats(inDim * outDim);
  const rows = [
    [`${layer} x·W`, false, false, batch, outDim, inDim, x, w],
    [`${layer} xᵀ·dY`, true, false, inDim, outDim, batch, x, dy],
  ];
  if (dyZeros !== null) rows.push([`${layer} dY·Wᵀ`, false, true, batch, inDim, outDim, dy, w]);
  return rows;
}

const builds = { [`wasm/${FILE}`]: loadGemm(join(WASM_DIR, FILE)) };
if (baselineDir) builds[`baseline ${FILE}`] = loadGemm(join(baselineDir, FILE));
const names = Object.keys(builds);
console.log(
  `\nµs per call of the kernel alone (median), model dense-layer products (${images ? 'MNIST' : 'synthetic'} images)\n` +
    'product'.padEnd(36) +
    'm×n×k'.padStart(16) +
    names.map((n) => n.padStart(28)).join('') +
    (baselineDir ? 'speedup'.padStart(9) : ''),
);
for (const batch of [16, 64]) {
  const cases = [
    ...denseProducts('mlp 784→128', batch, 784, 128, 0.8, null, inputs(batch)),
    ...denseProducts('mlp 128→10', batch, 128, 10, 0.3, 0),
    ...denseProducts('mlp 784→256', batch, 784, 256, 0.8, null, inputs(batch)),
    ...denseProducts('mlp 256→128', batch, 256, 128, 0.4, 0.4),
    ...denseProducts('mlp 128→10 (after 256)', batch, 128, 10, 0.45, 0),
    ...denseProducts('lenet 512→128', batch, 512, 128, 0.35, 0.5),
    ...denseProducts('lenet 128→10', batch, 128, 10, 0.5, 0),
    ...denseProducts('convnet 9216→128', batch, 9216, 128, 0.6, 0.75),
    ...denseProducts('convnet 128→10', batch, 128, 10, 0.75, 0),
  ];
  for (const [name, ta, tb, m, n, k, a, b] of cases) {
    if (only !== undefined && !`b${batch} ${name}`.includes(only)) continue;
    const times = timeMedians(names.map((build) => kernelCall(builds[build], ta, tb, m, n, k, a, b)));
    const shape = `${m}×${n}×${k}`;
    const ratio = baselineDir ? (times[1] / times[0]).toFixed(2).padStart(9) : '';
    console.log(`b${batch} ${name}`.padEnd(36) + shape.padStart(16) + times.map((t) => fmt(t, 1).padStart(28)).join('') + ratio);
  }
}
