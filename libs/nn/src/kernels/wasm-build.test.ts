// The committed wasm/*.wasm are exactly what wasm/build.mjs makes from the wasm/*.ts sources: rebuild and compare bytes.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const wasmDir = new URL('../../wasm/', import.meta.url);
const outDir = mkdtempSync(join(tmpdir(), 'gradq-wasm-'));
afterAll(() => rmSync(outDir, { recursive: true, force: true }));

describe('wasm/build.mjs', () => {
  it('rebuilds every committed .wasm byte for byte (run `npm run build:wasm` after editing wasm/*.ts)', async () => {
    const { buildWasm, VARIANTS } = (await import(new URL('build.mjs', wasmDir).href)) as {
      buildWasm(outDir: string): Promise<void>;
      VARIANTS: Record<string, string[]>;
    };
    await buildWasm(outDir);
    const files = Object.keys(VARIANTS);
    expect(files).toEqual([
      'gemm-relaxed.wasm',
      'gemm-simd.wasm',
      'adam.wasm',
      'vec.wasm',
      'conv-relaxed.wasm',
      'conv-simd.wasm',
      'pool.wasm',
    ]);
    for (const file of files) {
      const rebuilt = readFileSync(join(outDir, file));
      const committed = readFileSync(new URL(file, wasmDir));
      expect(rebuilt.equals(committed), `${file}: rebuilt ${rebuilt.length} bytes differ from committed ${committed.length}`).toBe(true);
    }
  }, 60_000);
});
