// Builds the WebAssembly GEMM from its AssemblyScript source (gemm.ts beside this file) in two variants:
//   gemm-relaxed.wasm  SIMD with relaxed SIMD (f32x4.relaxed_madd, a fused multiply-add on x86 with FMA3)
//   gemm-simd.wasm     plain SIMD (f32x4.mul + f32x4.add), for engines without relaxed SIMD
// Usage: node wasm/build.mjs [outDir]   (default: this directory). The output is deterministic; the test
// wasm-build.test.ts rebuilds into a temporary directory and compares the bytes with the committed files.
import asc from 'assemblyscript/asc';
import { mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));

const COMMON = [
  join(here, 'gemm.ts'),
  '-O3',
  '--runtime',
  'stub',
  '--noAssert',
  // The module allocates nothing: the loader (src/gemm-wasm.ts) creates the memory and owns its layout.
  '--importMemory',
  '--initialMemory',
  '1',
  // No `abort` import: with --noAssert and no throws nothing can call it.
  '--use',
  'abort=',
];

export const VARIANTS = {
  'gemm-relaxed.wasm': ['--enable', 'simd', '--enable', 'relaxed-simd'],
  'gemm-simd.wasm': ['--enable', 'simd'],
};

/** Compiles both variants into outDir; throws with the compiler's diagnostics on failure. */
export async function buildWasm(outDir = here) {
  mkdirSync(outDir, { recursive: true });
  for (const [file, flags] of Object.entries(VARIANTS)) {
    let diagnostics = '';
    const stderr = { write: (text) => void (diagnostics += text) };
    const { error } = await asc.main([...COMMON, ...flags, '--outFile', join(outDir, file)], { stdout: stderr, stderr });
    if (error) throw new Error(`asc failed for ${file}: ${error.message}\n${diagnostics}`);
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const outDir = process.argv[2] ? resolve(process.argv[2]) : here;
  await buildWasm(outDir);
  console.log(`built ${Object.keys(VARIANTS).join(', ')} in ${outDir}`);
}
