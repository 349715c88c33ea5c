// AssemblyScript source of the WebAssembly Adam/AdamW update (built by wasm/build.mjs into adam.wasm, loaded by
// src/optim/adam-wasm.ts). Plain SIMD only, never relaxed SIMD: the result must not depend on the CPU.
//
// Bit-identical to the TypeScript reference (src/optim/adam-reference.ts): every value is promoted to f64, the
// operations are the reference's, in its order (no fused multiply-add: f64x2 has none outside relaxed SIMD),
// with the correctly rounded f64x2.div and f64x2.sqrt, and each result is rounded to f32 once, on store:
//
//   g  = gradSum·invBatch + l2·p
//   m' = b1·m + a1·g;   v' = b2·v + (a2·g)·g
//   p' = p·shrink - (step·m') / (√(v'·invC2) + eps)      (m' and v' unrounded here, as in the reference)
//
// Layout of linear memory, owned by the caller: n-float arrays p, g, m, v at byte addresses past base(),
// 16-byte aligned is best but not required.

/** Byte address of the first free byte: the heap base, 16-byte aligned. */
export function base(): usize {
  return (__heap_base + 15) & ~(<usize>15);
}

/** Loads two f32 at addr as an f64x2. */
function load2(addr: usize): v128 {
  return f64x2.promote_low_f32x4(v128.load64_zero(addr));
}

/** Stores an f64x2 at addr as two f32, each rounded once. */
function store2(addr: usize, x: v128): void {
  v128.store64_lane(addr, f32x4.demote_f64x2_zero(x), 0);
}

/**
 * Adam over n values: p, g, m, v are byte addresses of n floats each; the other arguments are the step's constants.
 * Two values per iteration (an f64x2), then the last one if n is odd.
 */
export function adam(
  n: i32,
  p: usize,
  g: usize,
  m: usize,
  v: usize,
  invBatch: f64,
  l2: f64,
  b1: f64,
  a1: f64,
  b2: f64,
  a2: f64,
  step: f64,
  invC2: f64,
  shrink: f64,
  eps: f64,
): void {
  const vInvBatch = f64x2.splat(invBatch);
  const vL2 = f64x2.splat(l2);
  const vB1 = f64x2.splat(b1);
  const vA1 = f64x2.splat(a1);
  const vB2 = f64x2.splat(b2);
  const vA2 = f64x2.splat(a2);
  const vStep = f64x2.splat(step);
  const vInvC2 = f64x2.splat(invC2);
  const vShrink = f64x2.splat(shrink);
  const vEps = f64x2.splat(eps);
  let i = 0;
  for (; i + 2 <= n; i += 2) {
    const o = (<usize>i) << 2;
    const pi = load2(p + o);
    const gi = f64x2.add(f64x2.mul(load2(g + o), vInvBatch), f64x2.mul(vL2, pi));
    const mi = f64x2.add(f64x2.mul(vB1, load2(m + o)), f64x2.mul(vA1, gi));
    const vi = f64x2.add(f64x2.mul(vB2, load2(v + o)), f64x2.mul(f64x2.mul(vA2, gi), gi));
    store2(m + o, mi);
    store2(v + o, vi);
    const denom = f64x2.add(f64x2.sqrt(f64x2.mul(vi, vInvC2)), vEps);
    store2(p + o, f64x2.sub(f64x2.mul(pi, vShrink), f64x2.div(f64x2.mul(vStep, mi), denom)));
  }
  if (i < n) {
    const o = (<usize>i) << 2;
    const pi = <f64>load<f32>(p + o);
    const gi = <f64>load<f32>(g + o) * invBatch + l2 * pi;
    const mi = b1 * <f64>load<f32>(m + o) + a1 * gi;
    const vi = b2 * <f64>load<f32>(v + o) + a2 * gi * gi;
    store<f32>(m + o, <f32>mi);
    store<f32>(v + o, <f32>vi);
    store<f32>(p + o, <f32>(pi * shrink - (step * mi) / (Math.sqrt(vi * invC2) + eps)));
  }
}
