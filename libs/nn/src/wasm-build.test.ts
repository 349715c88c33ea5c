// The committed wasm/*.wasm are exactly what wasm/build.mjs makes from wasm/gemm.ts: rebuild and compare bytes.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const wasmDir = new URL('../wasm/', import.meta.url);
const outDir = mkdtempSync(join(tmpdir(), 'gradq-wasm-'));
afterAll(() => rmSync(outDir, { recursive: true, force: true }));

describe('wasm/build.mjs', () => {
  it('rebuilds gemm-relaxed.wasm and gemm-simd.wasm byte for byte (run `npm run build:wasm` after editing wasm/gemm.ts)', async () => {
    const { buildWasm } = (await import(new URL('build.mjs', wasmDir).href)) as { buildWasm(outDir: string): Promise<void> };
    await buildWasm(outDir);
    for (const file of ['gemm-relaxed.wasm', 'gemm-simd.wasm']) {
      const rebuilt = readFileSync(join(outDir, file));
      const committed = readFileSync(new URL(file, wasmDir));
      expect(rebuilt.equals(committed), `${file}: rebuilt ${rebuilt.length} bytes differ from committed ${committed.length}`).toBe(true);
    }
  }, 60_000);
});
