// AssemblyScript source of the WebAssembly Adam/AdamW update (built by wasm/build.mjs into adam.wasm, loaded by
// src/optim/adam-wasm.ts). Plain SIMD only, never relaxed SIMD: the result must not depend on the CPU.
//
// Float32 throughout, bit-identical to the TypeScript reference (src/optim/adam-reference.ts): the constants are
// float32, each operation is a correctly rounded f32x4 add, sub, mul, div or sqrt (no fused multiply-add: plain SIMD
// has none), in the reference's order, and every intermediate is rounded to float32 as it is computed:
//
//   g  = gradSum·invBatch + l2·p
//   m' = b1·m + a1·g;   v' = b2·v + (a2·g)·g
//   p' = p·shrink - (step·m') / (√(v'·invC2) + eps)
//
// Layout of linear memory, owned by the caller: n-float arrays p, g, m, v at byte addresses past base(),
// 16-byte aligned is best but not required.

/** Byte address of the first free byte: the heap base, 16-byte aligned. */
export function base(): usize {
  return (__heap_base + 15) & ~(<usize>15);
}

/**
 * Adam over n values: p, g, m, v are byte addresses of n floats each; the other arguments are the step's constants.
 * Eight values per iteration (two f32x4: the square roots and divisions of one overlap the other's arithmetic),
 * then the last n mod 8 one at a time.
 */
export function adam(
  n: i32,
  p: usize,
  g: usize,
  m: usize,
  v: usize,
  invBatch: f32,
  l2: f32,
  b1: f32,
  a1: f32,
  b2: f32,
  a2: f32,
  step: f32,
  invC2: f32,
  shrink: f32,
  eps: f32,
): void {
  const vInvBatch = f32x4.splat(invBatch);
  const vL2 = f32x4.splat(l2);
  const vB1 = f32x4.splat(b1);
  const vA1 = f32x4.splat(a1);
  const vB2 = f32x4.splat(b2);
  const vA2 = f32x4.splat(a2);
  const vStep = f32x4.splat(step);
  const vInvC2 = f32x4.splat(invC2);
  const vShrink = f32x4.splat(shrink);
  const vEps = f32x4.splat(eps);
  let i = 0;
  for (; i + 8 <= n; i += 8) {
    const o = (<usize>i) << 2;
    const p0 = v128.load(p + o);
    const p1 = v128.load(p + o, 16);
    const g0 = f32x4.add(f32x4.mul(v128.load(g + o), vInvBatch), f32x4.mul(vL2, p0));
    const g1 = f32x4.add(f32x4.mul(v128.load(g + o, 16), vInvBatch), f32x4.mul(vL2, p1));
    const m0 = f32x4.add(f32x4.mul(vB1, v128.load(m + o)), f32x4.mul(vA1, g0));
    const m1 = f32x4.add(f32x4.mul(vB1, v128.load(m + o, 16)), f32x4.mul(vA1, g1));
    const v0 = f32x4.add(f32x4.mul(vB2, v128.load(v + o)), f32x4.mul(f32x4.mul(vA2, g0), g0));
    const v1 = f32x4.add(f32x4.mul(vB2, v128.load(v + o, 16)), f32x4.mul(f32x4.mul(vA2, g1), g1));
    v128.store(m + o, m0);
    v128.store(m + o, m1, 16);
    v128.store(v + o, v0);
    v128.store(v + o, v1, 16);
    const d0 = f32x4.add(f32x4.sqrt(f32x4.mul(v0, vInvC2)), vEps);
    const d1 = f32x4.add(f32x4.sqrt(f32x4.mul(v1, vInvC2)), vEps);
    v128.store(p + o, f32x4.sub(f32x4.mul(p0, vShrink), f32x4.div(f32x4.mul(vStep, m0), d0)));
    v128.store(p + o, f32x4.sub(f32x4.mul(p1, vShrink), f32x4.div(f32x4.mul(vStep, m1), d1)), 16);
  }
  for (; i < n; i++) {
    const o = (<usize>i) << 2;
    const pi = load<f32>(p + o);
    const gi = load<f32>(g + o) * invBatch + l2 * pi;
    const mi = b1 * load<f32>(m + o) + a1 * gi;
    const vi = b2 * load<f32>(v + o) + a2 * gi * gi;
    store<f32>(m + o, mi);
    store<f32>(v + o, vi);
    store<f32>(p + o, pi * shrink - (step * mi) / (Mathf.sqrt(vi * invC2) + eps));
  }
}
