// Builds the WebAssembly kernels from their AssemblyScript sources beside this file:
//   gemm-relaxed.wasm  gemm.ts, SIMD with relaxed SIMD (f32x4.relaxed_madd, a fused multiply-add on x86 with FMA3)
//   gemm-simd.wasm     gemm.ts, plain SIMD (f32x4.mul + f32x4.add), for engines without relaxed SIMD
//   adam.wasm          adam.ts, plain SIMD only (the optimizer must not depend on the CPU)
//   vec.wasm           vec.ts, plain SIMD: gradient sum and finiteness check
//   conv-relaxed.wasm  conv.ts, 2-D convolution forward and backward, relaxed SIMD as gemm-relaxed.wasm
//   conv-simd.wasm     conv.ts, plain SIMD
//   pool.wasm          pool.ts, plain SIMD: 2×2 max-pooling forward and backward
// Usage: node wasm/build.mjs [outDir]   (default: this directory). The output is deterministic; the test
// src/kernels/wasm-build.test.ts rebuilds into a temporary directory and compares the bytes with the committed files.
import asc from 'assemblyscript/asc';
import { mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));

const COMMON = [
  '-O3',
  '--runtime',
  'stub',
  '--noAssert',
  // The modules allocate nothing: the loaders (src/kernels/gemm-wasm.ts, src/kernels/vec-wasm.ts,
  // src/kernels/conv2d-wasm.ts, src/kernels/maxpool2d-wasm.ts, src/optim/adam-wasm.ts) create the memory and own its
  // layout.
  '--importMemory',
  '--initialMemory',
  '1',
  // No `abort` import: with --noAssert and no throws nothing can call it.
  '--use',
  'abort=',
];

/** Output file: its source and compiler flags. */
export const VARIANTS = {
  'gemm-relaxed.wasm': [join(here, 'gemm.ts'), '--enable', 'simd', '--enable', 'relaxed-simd'],
  'gemm-simd.wasm': [join(here, 'gemm.ts'), '--enable', 'simd'],
  'adam.wasm': [join(here, 'adam.ts'), '--enable', 'simd'],
  'vec.wasm': [join(here, 'vec.ts'), '--enable', 'simd'],
  'conv-relaxed.wasm': [join(here, 'conv.ts'), '--enable', 'simd', '--enable', 'relaxed-simd'],
  'conv-simd.wasm': [join(here, 'conv.ts'), '--enable', 'simd'],
  'pool.wasm': [join(here, 'pool.ts'), '--enable', 'simd'],
};

/** Compiles every variant into outDir; throws with the compiler's diagnostics on failure. */
export async function buildWasm(outDir = here) {
  mkdirSync(outDir, { recursive: true });
  for (const [file, flags] of Object.entries(VARIANTS)) {
    let diagnostics = '';
    const stderr = { write: (text) => void (diagnostics += text) };
    const { error } = await asc.main([...flags, ...COMMON, '--outFile', join(outDir, file)], { stdout: stderr, stderr });
    if (error) throw new Error(`asc failed for ${file}: ${error.message}\n${diagnostics}`);
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const outDir = process.argv[2] ? resolve(process.argv[2]) : here;
  await buildWasm(outDir);
  console.log(`built ${Object.keys(VARIANTS).join(', ')} in ${outDir}`);
}
