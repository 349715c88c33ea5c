// Forward and backward times of lenet's convolution and pooling layers at batch 64, per layer, on the built library
// (dist/): conv1 1→16 k5 on 28×28, pool, conv2 16→32 k5 on 12×12, pool. The inputs are what training feeds them:
// MNIST images (or, without a data directory, synthetic ones with MNIST's ~80% zero pixels), activations and
// gradients made by these very layers (He-uniform weights, ReLU), so dout has the zeros of ReLU and pooling.
// bench-conv-torch.py times the same layers in PyTorch; run both in one session and compare ratios.
// Usage: cd /work/main && npx tsc -b libs/nn/tsconfig.lib.json && node libs/nn/wasm/bench-conv.mjs [MNIST_DIR]
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import {
  conv2dWasm,
  createConv2dWasm,
  maxPool2dReference,
  maxPool2dWasm,
  reluBackward,
  reluForward,
  Rng,
  WASM_KERNEL,
} from '../dist/index.js';

const B = 64;
const rng = new Rng(1);
const images = new Float32Array(B * 784);
if (process.argv[2]) {
  const bytes = gunzipSync(readFileSync(join(process.argv[2], 'train-images-idx3-ubyte.gz'))).subarray(16, 16 + B * 784);
  bytes.forEach((v, i) => (images[i] = v / 255));
} else {
  for (let i = 0; i < images.length; i++) images[i] = rng.nextFloat() < 0.8 ? 0 : rng.nextFloat();
}
const heUniform = (n, fanIn) => new Float32Array(n).map(() => (2 * rng.nextFloat() - 1) * Math.sqrt(6 / fanIn));
const conv1 = { batch: B, inC: 1, height: 28, width: 28, outC: 16, k: 5, padding: 'valid' };
const conv2 = { batch: B, inC: 16, height: 12, width: 12, outC: 32, k: 5, padding: 'valid' };
const pool1 = { batch: B, channels: 16, height: 24, width: 24 };
const pool2 = { batch: B, channels: 32, height: 8, width: 8 };
const w1 = heUniform(16 * 25, 25);
const b1 = new Float32Array(16).map(() => 0.1 * (2 * rng.nextFloat() - 1));
const w2 = heUniform(32 * 400, 400);
const b2 = new Float32Array(32).map(() => 0.1 * (2 * rng.nextFloat() - 1));

// One forward and backward pass to make realistic activations and gradients.
const y1 = new Float32Array(B * 16 * 576);
const p1 = new Float32Array(B * 16 * 144);
const a1 = new Int32Array(p1.length);
const y2 = new Float32Array(B * 32 * 64);
const p2 = new Float32Array(B * 512);
const a2 = new Int32Array(p2.length);
conv2dWasm.forward(y1, images, w1, b1, conv1);
reluForward(y1, y1, y1.length);
maxPool2dWasm.forward(p1, a1, y1, pool1);
conv2dWasm.forward(y2, p1, w2, b2, conv2);
reluForward(y2, y2, y2.length);
maxPool2dWasm.forward(p2, a2, y2, pool2);
const dp2 = new Float32Array(p2.length).map(() => 2 * rng.nextFloat() - 1);
const dy2 = new Float32Array(y2.length);
maxPool2dWasm.backward(dy2, dp2, a2, pool2);
reluBackward(dy2, dy2, y2, dy2.length);
const dp1 = new Float32Array(p1.length);
const dw1 = new Float32Array(w1.length);
const db1 = new Float32Array(16);
const dw2 = new Float32Array(w2.length);
const db2 = new Float32Array(32);
conv2dWasm.backward(dp1, dw2, db2, dy2, p1, w2, conv2);
const dy1 = new Float32Array(y1.length);
maxPool2dWasm.backward(dy1, dp1, a1, pool1);
reluBackward(dy1, dy1, y1, dy1.length);

const zeros = (a) => ((100 * a.reduce((n, v) => n + (v === 0 ? 1 : 0), 0)) / a.length).toFixed(0) + '%';
console.log(`conv2dWasm build: ${WASM_KERNEL}; Node ${process.versions.node}; ${process.argv[2] ? 'MNIST' : 'synthetic'} images`);
console.log(`zeros: images ${zeros(images)}, conv2 input ${zeros(p1)}, conv1 dout ${zeros(dy1)}, conv2 dout ${zeros(dy2)}`);

/** Best and median ms per call over 15 rounds of ~50 ms, after a warm-up. */
function time(fn) {
  let calls = 1;
  for (let t0 = performance.now(); performance.now() - t0 < 50; calls *= 2) for (let i = 0; i < calls; i++) fn();
  const rounds = [];
  for (let r = 0; r < 15; r++) {
    const t0 = performance.now();
    for (let i = 0; i < calls; i++) fn();
    rounds.push((performance.now() - t0) / calls);
  }
  rounds.sort((a, b) => a - b);
  return [rounds[0], rounds[7]];
}

const out1 = new Float32Array(y1.length);
const out2 = new Float32Array(y2.length);
const dx2 = new Float32Array(p1.length);
const conv = { [`conv2dWasm (${WASM_KERNEL})`]: conv2dWasm, 'conv2dWasm (simd build)': createConv2dWasm('simd') };
const rows = [];
for (const [name, k] of Object.entries(conv)) {
  rows.push([`conv1 forward, ${name}`, () => k.forward(out1, images, w1, b1, conv1)]);
  rows.push([`conv1 backward dw db, ${name}`, () => k.backward(null, dw1, db1, dy1, images, w1, conv1)]);
  rows.push([`conv2 forward, ${name}`, () => k.forward(out2, p1, w2, b2, conv2)]);
  rows.push([`conv2 backward dx dw db, ${name}`, () => k.backward(dx2, dw2, db2, dy2, p1, w2, conv2)]);
}
const dx1 = new Float32Array(y1.length);
for (const [name, k] of Object.entries({ maxPool2dWasm, maxPool2dReference })) {
  rows.push([`pool1 forward, ${name}`, () => k.forward(p1, a1, y1, pool1)]);
  rows.push([`pool1 backward, ${name}`, () => k.backward(dx1, dp1, a1, pool1)]);
  rows.push([`pool2 forward, ${name}`, () => k.forward(p2, a2, y2, pool2)]);
  rows.push([`pool2 backward, ${name}`, () => k.backward(dy2, dp2, a2, pool2)]);
}
console.log(`\n${'ms per call, batch 64'.padEnd(52)}${'best'.padStart(9)}${'median'.padStart(9)}`);
for (const [name, fn] of rows) {
  const [best, median] = time(fn);
  console.log(name.padEnd(52) + best.toFixed(3).padStart(9) + median.toFixed(3).padStart(9));
}
