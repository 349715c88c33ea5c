// AssemblyScript source of the WebAssembly SIMD 2×2 max-pooling, stride 2 (built by wasm/build.mjs into pool.wasm,
// loaded by src/kernels/maxpool2d-wasm.ts). Plain SIMD, exact: comparisons and selections only, so the results are
// src/kernels/maxpool2d-reference.ts's bit for bit.
//
// Layout of linear memory, owned by the caller: the arrays lie past base(). NCHW planes of h×w floats; outputs of
// ⌊h/2⌋×⌊w/2⌋ floats and i32 indices (y·w + x within the plane), as PyTorch's max_pool2d with return_indices.
//
// Method: four outputs at a time. Each of the window's two input rows is loaded 8 floats at a time and split into
// even and odd columns (shuffles), giving the four candidates of four windows in the order PyTorch compares them:
// (0,0), (0,1), (1,0), (1,1). A candidate replaces the maximum when it is greater or NaN (PyTorch's rule, branch-
// free with bitselect). Backward writes every input once: the gradient where the index matches, 0 elsewhere,
// interleaved back into the two rows; an odd last row or column gets 0.

/** Byte address of the first free byte: the heap base, 16-byte aligned. */
export function base(): usize {
  return (__heap_base + 15) & ~(<usize>15);
}

/** All ones in the lanes where candidate c replaces the maximum m: c > m, or c is NaN. */
function wins(c: v128, m: v128): v128 {
  return v128.or(f32x4.gt(c, m), f32x4.ne(c, c));
}

/** out and argmax (planes, ⌊h/2⌋, ⌊w/2⌋) = the maxima of x (planes, h, w) and their indices within the plane. */
export function forward(planes: i32, h: i32, w: i32, x: usize, out: usize, argmax: usize): void {
  const outH = h >> 1;
  const outW = w >> 1;
  const row = (<usize>w) << 2;
  const step = i32x4(0, 2, 4, 6);
  let o: usize = 0; // byte offset of the output, in out and in argmax
  for (let plane = 0; plane < planes; plane++) {
    const xp = x + <usize>plane * <usize>h * row;
    for (let i = 0; i < outH; i++) {
      const r0 = xp + <usize>(2 * i) * row;
      const r1 = r0 + row;
      let j = 0;
      for (; j + 4 <= outW; j += 4) {
        const at = (<usize>j) << 3;
        const a0 = v128.load(r0 + at);
        const b0 = v128.load(r0 + at, 16);
        const a1 = v128.load(r1 + at);
        const b1 = v128.load(r1 + at, 16);
        const i00 = i32x4.add(i32x4.splat(2 * i * w + 2 * j), step);
        let max = v128.shuffle<f32>(a0, b0, 0, 2, 4, 6);
        let arg = i00;
        let c = v128.shuffle<f32>(a0, b0, 1, 3, 5, 7);
        let t = wins(c, max);
        max = v128.bitselect(c, max, t);
        arg = v128.bitselect(i32x4.add(i00, i32x4.splat(1)), arg, t);
        c = v128.shuffle<f32>(a1, b1, 0, 2, 4, 6);
        t = wins(c, max);
        max = v128.bitselect(c, max, t);
        arg = v128.bitselect(i32x4.add(i00, i32x4.splat(w)), arg, t);
        c = v128.shuffle<f32>(a1, b1, 1, 3, 5, 7);
        t = wins(c, max);
        max = v128.bitselect(c, max, t);
        arg = v128.bitselect(i32x4.add(i00, i32x4.splat(w + 1)), arg, t);
        v128.store(out + o, max);
        v128.store(argmax + o, arg);
        o += 16;
      }
      for (; j < outW; j++) {
        let index = 2 * i * w + 2 * j;
        let max = load<f32>(r0 + ((<usize>j) << 3));
        for (let d = 1; d < 4; d++) {
          const candidate = (d >> 1) * w + (d & 1);
          const v = load<f32>(r0 + ((<usize>(2 * j + candidate)) << 2));
          if (v > max || v != v) {
            max = v;
            index = 2 * i * w + 2 * j + candidate;
          }
        }
        store<f32>(out + o, max);
        store<i32>(argmax + o, index);
        o += 4;
      }
    }
  }
}

/**
 * dx (planes, h, w) = dout (planes, ⌊h/2⌋, ⌊w/2⌋) at the inputs whose index argmax holds, 0 elsewhere; argmax as
 * forward wrote it (each index within its own window).
 */
export function backward(planes: i32, h: i32, w: i32, dout: usize, argmax: usize, dx: usize): void {
  const outH = h >> 1;
  const outW = w >> 1;
  const row = (<usize>w) << 2;
  const step = i32x4(0, 2, 4, 6);
  let o: usize = 0;
  for (let plane = 0; plane < planes; plane++) {
    const xp = dx + <usize>plane * <usize>h * row;
    for (let i = 0; i < outH; i++) {
      const r0 = xp + <usize>(2 * i) * row;
      const r1 = r0 + row;
      let j = 0;
      for (; j + 4 <= outW; j += 4) {
        const g = v128.load(dout + o);
        const arg = v128.load(argmax + o);
        const i00 = i32x4.add(i32x4.splat(2 * i * w + 2 * j), step);
        const g00 = v128.and(g, i32x4.eq(arg, i00));
        const g01 = v128.and(g, i32x4.eq(arg, i32x4.add(i00, i32x4.splat(1))));
        const g10 = v128.and(g, i32x4.eq(arg, i32x4.add(i00, i32x4.splat(w))));
        const g11 = v128.and(g, i32x4.eq(arg, i32x4.add(i00, i32x4.splat(w + 1))));
        const at = (<usize>j) << 3;
        v128.store(r0 + at, v128.shuffle<f32>(g00, g01, 0, 4, 1, 5));
        v128.store(r0 + at, v128.shuffle<f32>(g00, g01, 2, 6, 3, 7), 16);
        v128.store(r1 + at, v128.shuffle<f32>(g10, g11, 0, 4, 1, 5));
        v128.store(r1 + at, v128.shuffle<f32>(g10, g11, 2, 6, 3, 7), 16);
        o += 16;
      }
      for (; j < outW; j++) {
        const g = load<f32>(dout + o);
        const index = load<i32>(argmax + o) - 2 * i * w - 2 * j;
        for (let d = 0; d < 4; d++) {
          const candidate = (d >> 1) * w + (d & 1);
          store<f32>(r0 + ((<usize>(2 * j + candidate)) << 2), index == candidate ? g : 0);
        }
        o += 4;
      }
      if (w & 1) {
        store<f32>(r0 + row - 4, 0);
        store<f32>(r1 + row - 4, 0);
      }
    }
    if (h & 1) memory.fill(xp + <usize>(h - 1) * row, 0, row);
  }
}
