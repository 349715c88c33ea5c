// AssemblyScript source of the WebAssembly SIMD GEMM (built by wasm/build.mjs, loaded by src/gemm-wasm.ts).
// One source, two builds: with `--enable relaxed-simd` the multiply-add is f32x4.relaxed_madd (FMA where the CPU
// has it), without it f32x4.mul + f32x4.add. ASC_FEATURE_RELAXED_SIMD is a compile-time constant, so each build
// holds only its own variant. (No @inline decorators, which are not TypeScript: Binaryen -O3 inlines
// madd and storeRow by itself.)
//
//   C (m×n) = op(A) (m×k) · op(B) (k×n)      (+ C when `accumulate`), row-major f32, byte pointers.
//
// Layout of linear memory, owned by the caller: [scratch(), scratch() + packedBytes(n, k)) is where B is packed;
// A, B and C must lie after it (16-byte aligned is best but not required).
//
// Method: op(B) is packed into panels of 8 columns (k rows × 8 floats, zero-padded past n), so the transposed and
// plain B forms differ only in the packing. op(A) is read in place through strides (A(i,p) at a + i·si + p·sp),
// so nn and tn share one kernel, as do nt and tt. The kernel holds a 4×8 tile of C in eight f32x4 accumulators:
// per p it loads two vectors of the panel and splats one value of each of four A rows. Zeros are multiplied like
// any other value, so Inf/NaN propagate as in the reference. Each output is one sum over p in order 0..k-1.

// Staging for the 8 values of a partial tile row (n not a multiple of 8).
const TILE: usize = memory.data(32, 16);

/** Byte address of the packing scratch: the heap base, 16-byte aligned. */
export function scratch(): usize {
  return (__heap_base + 15) & ~(<usize>15);
}

/** Bytes of scratch that gemm uses to pack a B with these n and k. */
export function packedBytes(n: i32, k: i32): usize {
  return <usize>k * <usize>((n + 7) & ~7) * 4;
}

function madd(a: v128, b: v128, acc: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return f32x4.relaxed_madd(a, b, acc);
  return f32x4.add(f32x4.mul(a, b), acc);
}

/** Packs op(B) (k×n) into ceil(n/8) panels of k×8 floats at `pack`; columns past n are zero. */
function packB(transB: i32, n: i32, k: i32, b: usize, pack: usize): void {
  const panels = (n + 7) >> 3;
  const rowBytes = (<usize>n) << 2;
  const kBytes = (<usize>k) << 2;
  for (let q = 0; q < panels; q++) {
    const j0 = q << 3;
    const w = min(8, n - j0);
    const dst = pack + <usize>q * <usize>k * 32;
    if (!transB) {
      // B stored k×n: row p of the panel is B[p, j0..j0+8).
      let src = b + ((<usize>j0) << 2);
      if (w == 8) {
        for (let p = 0; p < k; p++) {
          const d = dst + ((<usize>p) << 5);
          v128.store(d, v128.load(src));
          v128.store(d, v128.load(src, 16), 16);
          src += rowBytes;
        }
      } else {
        for (let p = 0; p < k; p++) {
          const d = dst + ((<usize>p) << 5);
          v128.store(d, f32x4.splat(0));
          v128.store(d, f32x4.splat(0), 16);
          for (let jj = 0; jj < w; jj++) store<f32>(d + ((<usize>jj) << 2), load<f32>(src + ((<usize>jj) << 2)));
          src += rowBytes;
        }
      }
    } else {
      // B stored n×k: column jj of the panel is row j0+jj of B.
      if (w < 8) {
        for (let p = 0; p < k; p++) {
          const d = dst + ((<usize>p) << 5);
          v128.store(d, f32x4.splat(0));
          v128.store(d, f32x4.splat(0), 16);
        }
      }
      for (let jj = 0; jj < w; jj++) {
        let src = b + <usize>(j0 + jj) * kBytes;
        let d = dst + ((<usize>jj) << 2);
        for (let p = 0; p < k; p++) {
          store<f32>(d, load<f32>(src));
          src += 4;
          d += 32;
        }
      }
    }
  }
}

/** Writes (or adds) one tile row of 8 values to C[dst..], only the first w when the panel is partial. */
function storeRow(dst: usize, lo: v128, hi: v128, w: i32, accumulate: i32): void {
  if (w == 8) {
    if (accumulate) {
      lo = f32x4.add(v128.load(dst), lo);
      hi = f32x4.add(v128.load(dst, 16), hi);
    }
    v128.store(dst, lo);
    v128.store(dst, hi, 16);
  } else {
    v128.store(TILE, lo);
    v128.store(TILE, hi, 16);
    for (let jj = 0; jj < w; jj++) {
      const d = dst + ((<usize>jj) << 2);
      let v = load<f32>(TILE + ((<usize>jj) << 2));
      if (accumulate) v = load<f32>(d) + v;
      store<f32>(d, v);
    }
  }
}

/** C (m×n) = op(A)·packed B (+ C); A(i,p) at a + i·si + p·sp (bytes). */
function kernel(m: i32, n: i32, k: i32, a: usize, si: usize, sp: usize, pack: usize, c: usize, accumulate: i32): void {
  const panels = (n + 7) >> 3;
  const cRow = (<usize>n) << 2;
  for (let q = 0; q < panels; q++) {
    const j0 = q << 3;
    const w = min(8, n - j0);
    const panel = pack + <usize>q * <usize>k * 32;
    let i = 0;
    for (; i + 4 <= m; i += 4) {
      let c00 = f32x4.splat(0),
        c01 = f32x4.splat(0),
        c10 = f32x4.splat(0),
        c11 = f32x4.splat(0);
      let c20 = f32x4.splat(0),
        c21 = f32x4.splat(0),
        c30 = f32x4.splat(0),
        c31 = f32x4.splat(0);
      let a0 = a + <usize>i * si;
      let a1 = a0 + si;
      let a2 = a1 + si;
      let a3 = a2 + si;
      let bp = panel;
      for (let p = 0; p < k; p++) {
        const b0 = v128.load(bp);
        const b1 = v128.load(bp, 16);
        let x = v128.load32_splat(a0);
        c00 = madd(x, b0, c00);
        c01 = madd(x, b1, c01);
        x = v128.load32_splat(a1);
        c10 = madd(x, b0, c10);
        c11 = madd(x, b1, c11);
        x = v128.load32_splat(a2);
        c20 = madd(x, b0, c20);
        c21 = madd(x, b1, c21);
        x = v128.load32_splat(a3);
        c30 = madd(x, b0, c30);
        c31 = madd(x, b1, c31);
        a0 += sp;
        a1 += sp;
        a2 += sp;
        a3 += sp;
        bp += 32;
      }
      const d = c + <usize>i * cRow + ((<usize>j0) << 2);
      storeRow(d, c00, c01, w, accumulate);
      storeRow(d + cRow, c10, c11, w, accumulate);
      storeRow(d + 2 * cRow, c20, c21, w, accumulate);
      storeRow(d + 3 * cRow, c30, c31, w, accumulate);
    }
    for (; i < m; i++) {
      let c00 = f32x4.splat(0),
        c01 = f32x4.splat(0);
      let a0 = a + <usize>i * si;
      let bp = panel;
      for (let p = 0; p < k; p++) {
        const x = v128.load32_splat(a0);
        c00 = madd(x, v128.load(bp), c00);
        c01 = madd(x, v128.load(bp, 16), c01);
        a0 += sp;
        bp += 32;
      }
      storeRow(c + <usize>i * cRow + ((<usize>j0) << 2), c00, c01, w, accumulate);
    }
  }
}

/**
 * C (m×n) = op(A)·op(B) (+ C when accumulate != 0). op(A) is A (m×k) or, when transA, Aᵀ with A stored k×m;
 * op(B) is B (k×n) or, when transB, Bᵀ with B stored n×k. a, b, c are byte addresses past the packing scratch.
 */
export function gemm(transA: i32, transB: i32, m: i32, n: i32, k: i32, a: usize, b: usize, c: usize, accumulate: i32): void {
  if (m <= 0 || n <= 0) return;
  if (k < 0) k = 0;
  const pack = scratch();
  packB(transB, n, k, b, pack);
  const si: usize = transA ? 4 : (<usize>k) << 2;
  const sp: usize = transA ? (<usize>m) << 2 : 4;
  kernel(m, n, k, a, si, sp, pack, c, accumulate);
}
