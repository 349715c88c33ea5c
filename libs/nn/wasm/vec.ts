// AssemblyScript source of the WebAssembly vector passes (built by wasm/build.mjs into vec.wasm, loaded by
// src/kernels/vec-wasm.ts): the two full passes over a gradient per step besides the optimizer, turning a
// batch's byte pixels into floats, and ReLU forward and backward (bit operations: exact). Plain SIMD, exact: f32 addition and division are correctly rounded, so
// f32x4.add gives the bits of the TypeScript loop `sum[i] += g[i]` and f32x4.div those of `x[i] = p[i] / 255`
// (which compute in double and round to float32: the same result, since double has more than 2·24 + 2 bits).
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

/** dst[i] = src[i] / 255 for the n bytes at src, as floats at dst. Sixteen at a time, then one by one. */
export function unitFloats(n: i32, src: usize, dst: usize): void {
  const scale = f32x4.splat(255);
  let i = 0;
  for (; i + 16 <= n; i += 16) {
    const bytes = v128.load(src + <usize>i);
    const lo = i16x8.extend_low_i8x16_u(bytes);
    const hi = i16x8.extend_high_i8x16_u(bytes);
    const o = dst + ((<usize>i) << 2);
    v128.store(o, f32x4.div(f32x4.convert_i32x4_u(i32x4.extend_low_i16x8_u(lo)), scale));
    v128.store(o, f32x4.div(f32x4.convert_i32x4_u(i32x4.extend_high_i16x8_u(lo)), scale), 16);
    v128.store(o, f32x4.div(f32x4.convert_i32x4_u(i32x4.extend_low_i16x8_u(hi)), scale), 32);
    v128.store(o, f32x4.div(f32x4.convert_i32x4_u(i32x4.extend_high_i16x8_u(hi)), scale), 48);
  }
  for (; i < n; i++) store<f32>(dst + ((<usize>i) << 2), <f32>load<u8>(src + <usize>i) / 255);
}

/**
 * ReLU forward in place over the n floats at x: x[i] < 0 ? 0 : x[i] (NaN and -0 stay as they are): the bits of x are
 * cleared where f32x4.lt gives all ones (x < 0, never for NaN or -0). Sixteen at a time, then one by one.
 */
export function reluForward(n: i32, x: usize): void {
  const zero = f32x4.splat(0);
  let i = 0;
  for (; i + 16 <= n; i += 16) {
    const p = x + ((<usize>i) << 2);
    const a = v128.load(p);
    const b = v128.load(p, 16);
    const c = v128.load(p, 32);
    const d = v128.load(p, 48);
    v128.store(p, v128.andnot(a, f32x4.lt(a, zero)));
    v128.store(p, v128.andnot(b, f32x4.lt(b, zero)), 16);
    v128.store(p, v128.andnot(c, f32x4.lt(c, zero)), 32);
    v128.store(p, v128.andnot(d, f32x4.lt(d, zero)), 48);
  }
  for (; i < n; i++) {
    const p = x + ((<usize>i) << 2);
    store<u32>(p, load<u32>(p) & ~(<u32>-(<i32>(load<f32>(p) < 0))));
  }
}

/**
 * ReLU backward in place over the n floats at dout: dout[i] where mask[i] > 0, else 0 (the bits of dout kept where
 * f32x4.gt gives all ones). Sixteen at a time, then one by one.
 */
export function reluBackward(n: i32, dout: usize, mask: usize): void {
  const zero = f32x4.splat(0);
  let i = 0;
  for (; i + 16 <= n; i += 16) {
    const o = (<usize>i) << 2;
    const p = dout + o;
    const q = mask + o;
    v128.store(p, v128.and(v128.load(p), f32x4.gt(v128.load(q), zero)));
    v128.store(p, v128.and(v128.load(p, 16), f32x4.gt(v128.load(q, 16), zero)), 16);
    v128.store(p, v128.and(v128.load(p, 32), f32x4.gt(v128.load(q, 32), zero)), 32);
    v128.store(p, v128.and(v128.load(p, 48), f32x4.gt(v128.load(q, 48), zero)), 48);
  }
  for (; i < n; i++) {
    const o = (<usize>i) << 2;
    store<u32>(dout + o, load<u32>(dout + o) & (<u32>-(<i32>(load<f32>(mask + o) > 0))));
  }
}
