// AssemblyScript source of the WebAssembly SIMD GEMM (built by wasm/build.mjs, loaded by src/kernels/gemm-wasm.ts).
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

// Staging for the values of a partial tile row (n not a multiple of the tile width): 8 for gemm, 28 for
// gemmSkipZeros.
const TILE: usize = memory.data(112, 16);

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

// ---- Skipping zeros of A -------------------------------------------------------------------------------------
//
// Images and ReLU outputs are mostly exact zeros (MNIST pixels ~80%, hidden activations ~50%). gemmSkipZeros
// computes the same C as gemm, op(B) = B only (not transposed), but leaves the terms with A(i,p) = 0 out of each
// sum. Each output is the same multiply-adds in the same order minus those whose A value is ±0, so for finite B
// the value equals gemm's (leaving out acc + 0·b changes at most the sign of a zero sum). Unlike gemm, 0·Inf and
// 0·NaN in B are left out instead of giving NaN (as gemmFast does). NaN in A is kept (NaN ≠ 0).
//
// Method: B is packed into panels of PANEL = 7 vectors (28 columns; k rows, contiguous, so the rows a list visits
// do not collide in the same cache sets as B's power-of-two row strides would); a last panel of at most 16
// columns is NARROW = 4 vectors wide, and columns past n are zero. For every row i of op(A) a list holds its
// nonzeros, p ascending, each with p. Then per panel and row the list is run with the panel's columns in 7 (or 4)
// f32x4 accumulators, starting from zero; the sum is added to C when accumulating.
//
// Seven, not eight: V8 (Node 20) issues the loads of an entry's B vectors before its multiply-adds, so it needs
// accumulators + B vectors + the splat ≤ 15 vector registers (xmm15 is its scratch); with 8 accumulators it keeps
// some on the stack and the loop runs at under half the speed (as in wasm/conv.ts).
//
// Scratch at scratch(): the panels, then the lists (k entries of 8 bytes per row), then each list's end.

const PANEL = 7;
const NARROW = 4;

/** Fraction of nonzeros of A above which gemmSkipZeros runs the dense kernel instead (both give the same C). */
const DENSE_ABOVE: f64 = 0.6;

/** Vectors per row of the panel at column j0 of an n-column B: PANEL, or NARROW when at most 4·NARROW are left. */
function panelVectors(n: i32, j0: i32): i32 {
  return n - j0 <= 4 * NARROW ? NARROW : PANEL;
}

/** Bytes of B (k×n) in panels: the full ones, then the last (full, or narrow). */
function panelsBytes(n: i32, k: i32): usize {
  const full = n / (4 * PANEL);
  const rest = n - full * 4 * PANEL;
  const vectors = full * PANEL + (rest == 0 ? 0 : panelVectors(rest, 0));
  return <usize>k * <usize>vectors * 16;
}

/** Bytes of scratch that gemmSkipZeros uses for these m, n, k (at least packedBytes(n, k), for its dense path). */
export function skipZerosBytes(m: i32, n: i32, k: i32): usize {
  const sparse = panelsBytes(n, k) + <usize>m * <usize>k * 8 + <usize>m * 4;
  return max(sparse, packedBytes(n, k));
}

/** Number of values among the count floats at a that are not ±0 (NaN counts as nonzero). */
function countNonzeros(a: usize, count: i32): i32 {
  let zeros = i32x4.splat(0);
  let i = 0;
  // f32x4.eq gives -1 (all ones) per lane equal to 0: subtracting counts them.
  for (; i + 4 <= count; i += 4) zeros = i32x4.sub(zeros, f32x4.eq(v128.load(a + ((<usize>i) << 2)), f32x4.splat(0)));
  let n = count - i32x4.extract_lane(zeros, 0) - i32x4.extract_lane(zeros, 1) - i32x4.extract_lane(zeros, 2) - i32x4.extract_lane(zeros, 3);
  for (; i < count; i++) if (load<f32>(a + ((<usize>i) << 2)) == 0) n--;
  return n;
}

/** Packs B (k×n) into its panels at `pack` (see above); columns past n are zero. */
function packPanels(n: i32, k: i32, b: usize, pack: usize): void {
  const rowBytes = (<usize>n) << 2;
  let dst = pack;
  for (let j0 = 0; j0 < n; j0 += 4 * PANEL) {
    const vectors = panelVectors(n, j0);
    const w = min(4 * vectors, n - j0);
    let src = b + ((<usize>j0) << 2);
    for (let p = 0; p < k; p++) {
      if (w == 4 * vectors) {
        for (let v = 0; v < vectors; v++) v128.store(dst + ((<usize>v) << 4), v128.load(src + ((<usize>v) << 4)));
      } else {
        for (let v = 0; v < vectors; v++) v128.store(dst + ((<usize>v) << 4), f32x4.splat(0));
        for (let j = 0; j < w; j++) store<f32>(dst + ((<usize>j) << 2), load<f32>(src + ((<usize>j) << 2)));
      }
      src += rowBytes;
      dst += (<usize>vectors) << 4;
    }
  }
}

/** Appends (p, x) to the list ending at `end` and returns the new end: past the entry only when x ≠ 0. */
function entry(end: usize, p: i32, x: f32): usize {
  store<u32>(end, p);
  store<f32>(end, x, 4);
  return end + select<usize>(8, 0, x != 0);
}

/**
 * The lists of nonzeros of the m rows of A (m×k): row i's at lists + i·k·8, its end at ends + 4i. Four values at a
 * time, skipping groups of four zeros (images and ReLU outputs have long runs of them), branch-free within a group.
 */
function listNonzeros(m: i32, k: i32, a: usize, lists: usize, ends: usize): void {
  for (let i = 0; i < m; i++) {
    let ap = a + <usize>i * ((<usize>k) << 2);
    let end = lists + <usize>i * ((<usize>k) << 3);
    let p = 0;
    for (; p + 4 <= k; p += 4) {
      if (v128.any_true(f32x4.ne(v128.load(ap), f32x4.splat(0)))) {
        end = entry(end, p, load<f32>(ap));
        end = entry(end, p + 1, load<f32>(ap, 4));
        end = entry(end, p + 2, load<f32>(ap, 8));
        end = entry(end, p + 3, load<f32>(ap, 12));
      }
      ap += 16;
    }
    for (; p < k; p++) {
      end = entry(end, p, load<f32>(ap));
      ap += 4;
    }
    store<u32>(ends + ((<usize>i) << 2), <u32>end);
  }
}

/** listNonzeros for the rows of Aᵀ, A stored k×m: four rows at a time, skipping p where all four are zero. */
function listNonzerosT(m: i32, k: i32, a: usize, lists: usize, ends: usize): void {
  const listBytes = (<usize>k) << 3;
  const aRow = (<usize>m) << 2;
  let i = 0;
  for (; i + 4 <= m; i += 4) {
    let e0 = lists + <usize>i * listBytes;
    let e1 = e0 + listBytes;
    let e2 = e1 + listBytes;
    let e3 = e2 + listBytes;
    let ap = a + ((<usize>i) << 2);
    for (let p = 0; p < k; p++) {
      if (v128.any_true(f32x4.ne(v128.load(ap), f32x4.splat(0)))) {
        e0 = entry(e0, p, load<f32>(ap));
        e1 = entry(e1, p, load<f32>(ap, 4));
        e2 = entry(e2, p, load<f32>(ap, 8));
        e3 = entry(e3, p, load<f32>(ap, 12));
      }
      ap += aRow;
    }
    const at = ends + ((<usize>i) << 2);
    store<u32>(at, <u32>e0);
    store<u32>(at, <u32>e1, 4);
    store<u32>(at, <u32>e2, 8);
    store<u32>(at, <u32>e3, 12);
  }
  for (; i < m; i++) {
    let end = lists + <usize>i * listBytes;
    let ap = a + ((<usize>i) << 2);
    for (let p = 0; p < k; p++) {
      end = entry(end, p, load<f32>(ap));
      ap += aRow;
    }
    store<u32>(ends + ((<usize>i) << 2), <u32>end);
  }
}

/** Writes (or adds) the 4 values of v to C at dst. */
function store4(dst: usize, v: v128, accumulate: i32): void {
  if (accumulate) v = f32x4.add(v128.load(dst), v);
  v128.store(dst, v);
}

/** Writes (or adds) the first w values staged at TILE to C at dst: whole vectors, then one at a time. */
function storeStaged(dst: usize, w: i32, accumulate: i32): void {
  let j = 0;
  for (; j + 4 <= w; j += 4) store4(dst + ((<usize>j) << 2), v128.load(TILE + ((<usize>j) << 2)), accumulate);
  for (; j < w; j++) {
    const d = dst + ((<usize>j) << 2);
    let v = load<f32>(TILE + ((<usize>j) << 2));
    if (accumulate) v = load<f32>(d) + v;
    store<f32>(d, v);
  }
}

/**
 * C[·, j0 + w) (+)= the lists times a panel of PANEL vectors: row i of C (at dst + i·cRow) gets Σ x·B(p, j0..)
 * over the entries (p, x) of list i (at lists + i·listBytes, its end at ends + 4i).
 */
function runPanel(
  m: i32,
  lists: usize,
  listBytes: usize,
  ends: usize,
  panel: usize,
  dst: usize,
  cRow: usize,
  w: i32,
  accumulate: i32,
): void {
  for (let i = 0; i < m; i++) {
    let c0 = f32x4.splat(0),
      c1 = f32x4.splat(0),
      c2 = f32x4.splat(0),
      c3 = f32x4.splat(0);
    let c4 = f32x4.splat(0),
      c5 = f32x4.splat(0),
      c6 = f32x4.splat(0);
    const end = <usize>load<u32>(ends + ((<usize>i) << 2));
    for (let e = lists + <usize>i * listBytes; e < end; e += 8) {
      const x = v128.load32_splat(e, 4);
      const bp = panel + <usize>load<u32>(e) * (PANEL * 16);
      c0 = madd(x, v128.load(bp), c0);
      c1 = madd(x, v128.load(bp, 16), c1);
      c2 = madd(x, v128.load(bp, 32), c2);
      c3 = madd(x, v128.load(bp, 48), c3);
      c4 = madd(x, v128.load(bp, 64), c4);
      c5 = madd(x, v128.load(bp, 80), c5);
      c6 = madd(x, v128.load(bp, 96), c6);
    }
    const d = dst + <usize>i * cRow;
    if (w >= 4 * PANEL) {
      store4(d, c0, accumulate);
      store4(d + 16, c1, accumulate);
      store4(d + 32, c2, accumulate);
      store4(d + 48, c3, accumulate);
      store4(d + 64, c4, accumulate);
      store4(d + 80, c5, accumulate);
      store4(d + 96, c6, accumulate);
    } else {
      v128.store(TILE, c0);
      v128.store(TILE, c1, 16);
      v128.store(TILE, c2, 32);
      v128.store(TILE, c3, 48);
      v128.store(TILE, c4, 64);
      v128.store(TILE, c5, 80);
      v128.store(TILE, c6, 96);
      storeStaged(d, w, accumulate);
    }
  }
}

/** runPanel for a narrow panel (NARROW vectors). */
function runNarrowPanel(
  m: i32,
  lists: usize,
  listBytes: usize,
  ends: usize,
  panel: usize,
  dst: usize,
  cRow: usize,
  w: i32,
  accumulate: i32,
): void {
  for (let i = 0; i < m; i++) {
    let c0 = f32x4.splat(0),
      c1 = f32x4.splat(0),
      c2 = f32x4.splat(0),
      c3 = f32x4.splat(0);
    const end = <usize>load<u32>(ends + ((<usize>i) << 2));
    for (let e = lists + <usize>i * listBytes; e < end; e += 8) {
      const x = v128.load32_splat(e, 4);
      const bp = panel + <usize>load<u32>(e) * (NARROW * 16);
      c0 = madd(x, v128.load(bp), c0);
      c1 = madd(x, v128.load(bp, 16), c1);
      c2 = madd(x, v128.load(bp, 32), c2);
      c3 = madd(x, v128.load(bp, 48), c3);
    }
    const d = dst + <usize>i * cRow;
    if (w >= 4 * NARROW) {
      store4(d, c0, accumulate);
      store4(d + 16, c1, accumulate);
      store4(d + 32, c2, accumulate);
      store4(d + 48, c3, accumulate);
    } else {
      v128.store(TILE, c0);
      v128.store(TILE, c1, 16);
      v128.store(TILE, c2, 32);
      v128.store(TILE, c3, 48);
      storeStaged(d, w, accumulate);
    }
  }
}

/**
 * C (m×n) = op(A)·B (+ C when accumulate != 0), leaving out the terms where A(i,p) is zero. op(A) is A (m×k) or,
 * when transA, Aᵀ with A stored k×m; B is k×n. Runs gemm when more than DENSE_ABOVE of A is nonzero.
 * Needs skipZerosBytes(m, n, k) of scratch.
 */
export function gemmSkipZeros(transA: i32, m: i32, n: i32, k: i32, a: usize, b: usize, c: usize, accumulate: i32): void {
  if (m <= 0 || n <= 0) return;
  if (k < 0) k = 0;
  if (<f64>countNonzeros(a, m * k) > DENSE_ABOVE * <f64>m * <f64>k) {
    gemm(transA, 0, m, n, k, a, b, c, accumulate);
    return;
  }
  const pack = scratch();
  packPanels(n, k, b, pack);
  const lists = pack + panelsBytes(n, k);
  const listBytes = (<usize>k) << 3;
  const ends = lists + <usize>m * listBytes;
  if (transA) listNonzerosT(m, k, a, lists, ends);
  else listNonzeros(m, k, a, lists, ends);
  const cRow = (<usize>n) << 2;
  let panel = pack;
  for (let j0 = 0; j0 < n; j0 += 4 * PANEL) {
    const vectors = panelVectors(n, j0);
    const w = min(4 * vectors, n - j0);
    const dst = c + ((<usize>j0) << 2);
    if (vectors == PANEL) runPanel(m, lists, listBytes, ends, panel, dst, cRow, w, accumulate);
    else runNarrowPanel(m, lists, listBytes, ends, panel, dst, cRow, w, accumulate);
    panel += <usize>k * ((<usize>vectors) << 4);
  }
}
