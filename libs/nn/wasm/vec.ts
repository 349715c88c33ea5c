// AssemblyScript source of the WebAssembly vector passes (built by wasm/build.mjs into vec.wasm, loaded by
// src/vec-wasm.ts): the two full passes over a gradient per step besides the optimizer. Plain SIMD, exact: f32
// addition is correctly rounded, so f32x4.add gives the bits of the TypeScript loop `sum[i] += g[i]` (which adds
// in double and rounds to float32: the same result, since double has more than 2·24 + 2 bits).
//
// Layout of linear memory, owned by the caller: the arrays lie past base().

/** Byte address of the first free byte: the heap base, 16-byte aligned. */
export function base(): usize {
  return (__heap_base + 15) & ~(<usize>15);
}

/** sum[i] += g[i] for the n floats at byte addresses sum and g. */
export function addInto(n: i32, sum: usize, g: usize): void {
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const o = (<usize>i) << 2;
    v128.store(sum + o, f32x4.add(v128.load(sum + o), v128.load(g + o)));
  }
  for (; i < n; i++) {
    const o = (<usize>i) << 2;
    store<f32>(sum + o, load<f32>(sum + o) + load<f32>(g + o));
  }
}

const EXPONENT: u32 = 0x7f800000; // all exponent bits set: ±Infinity or NaN

/** Index of the first NaN or ±Infinity among the n floats at x, or -1. Sixteen at a time, then one by one. */
export function firstNonFinite(n: i32, x: usize): i32 {
  const mask = i32x4.splat(EXPONENT);
  let i = 0;
  for (; i + 16 <= n; i += 16) {
    const p = x + ((<usize>i) << 2);
    const a = i32x4.eq(v128.and(v128.load(p), mask), mask);
    const b = i32x4.eq(v128.and(v128.load(p, 16), mask), mask);
    const c = i32x4.eq(v128.and(v128.load(p, 32), mask), mask);
    const d = i32x4.eq(v128.and(v128.load(p, 48), mask), mask);
    if (v128.any_true(v128.or(v128.or(a, b), v128.or(c, d)))) break;
  }
  for (; i < n; i++) if ((load<u32>(x + ((<usize>i) << 2)) & EXPONENT) == EXPONENT) return i;
  return -1;
}
