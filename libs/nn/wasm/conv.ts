// AssemblyScript source of the WebAssembly SIMD 2-D convolution (built by wasm/build.mjs into conv-relaxed.wasm and
// conv-simd.wasm, loaded by src/kernels/conv2d-wasm.ts). Stride 1, NCHW, weights (outC, inC, k, k) as PyTorch;
// `pad` zeros on each side (0 for 'valid', (k - 1) / 2 for 'same'). One source, two builds, as wasm/gemm.ts: with
// `--enable relaxed-simd` the multiply-add is f32x4.relaxed_madd (fused where the CPU has FMA), else mul + add.
//
// Layout of linear memory, owned by the caller: [base(), base() + scratch bytes) is this module's scratch (its
// size from forwardScratchBytes / backwardScratchBytes); the tensors lie after it, x followed by 32 spare bytes
// (vector loads may read up to 7 floats past the end of a row into lanes whose results are dropped).
//
// Method (src/kernels/conv2d-wasm.ts says what was measured against what):
//   forward   a direct kernel (an implicit GEMM, no im2col): a tile of 4 output channels × 8 adjacent outputs of a
//             row in eight f32x4 accumulators; per tap (c, di, dj) it loads the 8 inputs (contiguous in the row)
//             and splats 4 weights, packed per block of 4 channels. Runs of a row that are all zero (image
//             background) are skipped.
//   backward  after ReLU and max-pooling most of dout is exactly 0, so dw and dx are products with dout that
//             leave its zeros out (see "Backward" below).
// Left-out terms are w·0 or 0·x: for finite values that changes nothing but the sign of a zero sum. Every output
// is a sum in a fixed order (dw: images in order, then positions in order), so results depend only on the inputs.

/** Byte address of the scratch: the heap base, 16-byte aligned. */
export function base(): usize {
  return (__heap_base + 15) & ~(<usize>15);
}

function madd(a: v128, b: v128, acc: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return f32x4.relaxed_madd(a, b, acc);
  return f32x4.add(f32x4.mul(a, b), acc);
}

function align16(bytes: usize): usize {
  return (bytes + 15) & ~(<usize>15);
}

/** Bytes of a (c, h + 2·pad, w + 2·pad) image with 32 spare bytes after it; 0 without padding. */
function paddedBytes(c: i32, h: i32, w: i32, pad: i32): usize {
  if (pad == 0) return 0;
  return align16(<usize>c * <usize>(h + 2 * pad) * <usize>(w + 2 * pad) * 4 + 32);
}

/** Copies the image (c, h, w) at src into the interior of the (c, h + 2·pad, w + 2·pad) one at dst, whose border is zero. */
function padInto(src: usize, dst: usize, c: i32, h: i32, w: i32, pad: i32): void {
  const hp = h + 2 * pad;
  const wp = w + 2 * pad;
  const rowBytes = (<usize>w) << 2;
  for (let ch = 0; ch < c; ch++) {
    for (let y = 0; y < h; y++) {
      memory.copy(
        dst + ((<usize>(ch * hp + y + pad) * <usize>wp + <usize>pad) << 2),
        src + ((<usize>(ch * h + y) * <usize>w) << 2),
        rowBytes,
      );
    }
  }
}

// ---- Forward --------------------------------------------------------------------------------------------------
//
// Scratch: the packed weights (ceil(outC / 4) blocks of K taps × 4 channels, channels past outC zero), then the
// zero-run map (one byte per run of 8 + k - 1 inputs of a row: whether all are 0), then (with pad) one padded image.

function packedWeightsBytes(inC: i32, outC: i32, k: i32): usize {
  return <usize>((outC + 3) >> 2) * <usize>(inC * k * k) * 16;
}

function zeroMapBytes(inC: i32, hp: i32, outW: i32): usize {
  return align16(<usize>inC * <usize>hp * <usize>((outW + 7) >> 3));
}

/** Bytes of scratch forward uses for these sizes. */
export function forwardScratchBytes(inC: i32, h: i32, w: i32, outC: i32, k: i32, pad: i32): usize {
  const outW = w + 2 * pad - k + 1;
  return packedWeightsBytes(inC, outC, k) + zeroMapBytes(inC, h + 2 * pad, outW) + paddedBytes(inC, h, w, pad);
}

/** Packs w (outC, K) into blocks of 4 channels: tap p of block ob at pack + (ob·K + p)·16, one f32 per channel. */
function packWeights(w: usize, outC: i32, taps: i32, pack: usize): void {
  const blocks = (outC + 3) >> 2;
  for (let ob = 0; ob < blocks; ob++) {
    for (let r = 0; r < 4; r++) {
      const o = ob * 4 + r;
      let d = pack + <usize>ob * <usize>taps * 16 + ((<usize>r) << 2);
      const src = w + ((<usize>o * <usize>taps) << 2);
      for (let p = 0; p < taps; p++) {
        store<f32>(d, o < outC ? load<f32>(src + ((<usize>p) << 2)) : 0);
        d += 16;
      }
    }
  }
}

/**
 * For each row y of each channel of the (inC, hp, wp) image at src and each tile of 8 outputs starting at column
 * j0 = 8t, one byte at map + (c·hp + y)·tiles + t: 1 when the inputs the tile reads, columns [j0, j0 + w + k - 1)
 * with w = min(8, outW - j0), are all ±0 (NaN is not zero).
 */
function mapZeroRuns(src: usize, inC: i32, hp: i32, wp: i32, outW: i32, k: i32, map: usize): void {
  const tiles = (outW + 7) >> 3;
  const zero = f32x4.splat(0);
  for (let row = 0; row < inC * hp; row++) {
    const rp = src + ((<usize>row * <usize>wp) << 2);
    for (let t = 0; t < tiles; t++) {
      const j0 = t << 3;
      const end = min(j0 + 8, outW) + k - 1;
      let j = j0;
      let nonzero = false;
      for (; j + 4 <= end; j += 4) nonzero = nonzero || v128.any_true(f32x4.ne(v128.load(rp + ((<usize>j) << 2)), zero));
      for (; j < end; j++) nonzero = nonzero || load<f32>(rp + ((<usize>j) << 2)) != 0;
      store<u8>(map + <usize>row * <usize>tiles + <usize>t, nonzero ? 0 : 1);
    }
  }
}

/**
 * y (batch, outC, outH, outW) = conv(x (batch, inC, h, w), w (outC, inC, k, k)) + b (outC), with `pad` zeros on
 * each side; x, w, b, y are byte addresses past the scratch at base(), x followed by 32 spare bytes.
 */
export function forward(batch: i32, inC: i32, h: i32, w: i32, outC: i32, k: i32, pad: i32, x: usize, wt: usize, b: usize, y: usize): void {
  const hp = h + 2 * pad;
  const wp = w + 2 * pad;
  const outH = hp - k + 1;
  const outW = wp - k + 1;
  const taps = inC * k * k;
  const tiles = (outW + 7) >> 3;
  const pack = base();
  const map = pack + packedWeightsBytes(inC, outC, k);
  const padded = map + zeroMapBytes(inC, hp, outW);
  packWeights(wt, outC, taps, pack);
  if (pad > 0) memory.fill(padded, 0, paddedBytes(inC, h, w, pad));
  const imageBytes = <usize>inC * <usize>h * <usize>w * 4;
  const outPlane = <usize>outH * <usize>outW * 4;
  const rowBytes = (<usize>wp) << 2;
  const planeBytes = <usize>hp * rowBytes;
  for (let n = 0; n < batch; n++) {
    let src = x + <usize>n * imageBytes;
    if (pad > 0) {
      padInto(src, padded, inC, h, w, pad);
      src = padded;
    }
    mapZeroRuns(src, inC, hp, wp, outW, k, map);
    const yn = y + <usize>n * <usize>outC * outPlane;
    for (let ob = 0; ob < outC; ob += 4) {
      const wb = pack + <usize>(ob >> 2) * <usize>taps * 16;
      for (let i = 0; i < outH; i++) {
        for (let t = 0; t < tiles; t++) {
          const j0 = t << 3;
          let c00 = f32x4.splat(0),
            c01 = f32x4.splat(0),
            c10 = f32x4.splat(0),
            c11 = f32x4.splat(0);
          let c20 = f32x4.splat(0),
            c21 = f32x4.splat(0),
            c30 = f32x4.splat(0),
            c31 = f32x4.splat(0);
          let plane = src + ((<usize>i * <usize>wp + <usize>j0) << 2);
          let mp = map + <usize>i * <usize>tiles + <usize>t;
          let wq = wb;
          for (let c = 0; c < inC; c++) {
            let rp = plane;
            for (let di = 0; di < k; di++) {
              if (load<u8>(mp + <usize>di * <usize>tiles) == 0) {
                let xp = rp;
                let wp4 = wq;
                for (let dj = 0; dj < k; dj++) {
                  const x0 = v128.load(xp);
                  const x1 = v128.load(xp, 16);
                  let s = v128.load32_splat(wp4);
                  c00 = madd(s, x0, c00);
                  c01 = madd(s, x1, c01);
                  s = v128.load32_splat(wp4, 4);
                  c10 = madd(s, x0, c10);
                  c11 = madd(s, x1, c11);
                  s = v128.load32_splat(wp4, 8);
                  c20 = madd(s, x0, c20);
                  c21 = madd(s, x1, c21);
                  s = v128.load32_splat(wp4, 12);
                  c30 = madd(s, x0, c30);
                  c31 = madd(s, x1, c31);
                  xp += 4;
                  wp4 += 16;
                }
              }
              rp += rowBytes;
              wq += <usize>k * 16;
            }
            plane += planeBytes;
            mp += <usize>hp * <usize>tiles;
          }
          const wv = min(8, outW - j0);
          const d = yn + <usize>ob * outPlane + ((<usize>i * <usize>outW + <usize>j0) << 2);
          storeTile(d, c00, c01, load<f32>(b + ((<usize>ob) << 2)), wv);
          if (ob + 1 < outC) storeTile(d + outPlane, c10, c11, load<f32>(b + ((<usize>(ob + 1)) << 2)), wv);
          if (ob + 2 < outC) storeTile(d + 2 * outPlane, c20, c21, load<f32>(b + ((<usize>(ob + 2)) << 2)), wv);
          if (ob + 3 < outC) storeTile(d + 3 * outPlane, c30, c31, load<f32>(b + ((<usize>(ob + 3)) << 2)), wv);
        }
      }
    }
  }
}

// Staging for the 8 values of a partial tile.
const TILE: usize = memory.data(32, 16);

/** Writes acc + bias for the first w of the 8 outputs lo|hi at dst. */
function storeTile(dst: usize, lo: v128, hi: v128, bias: f32, w: i32): void {
  const bv = f32x4.splat(bias);
  lo = f32x4.add(lo, bv);
  hi = f32x4.add(hi, bv);
  if (w == 8) {
    v128.store(dst, lo);
    v128.store(dst, hi, 16);
    return;
  }
  v128.store(TILE, lo);
  v128.store(TILE, hi, 16);
  for (let jj = 0; jj < w; jj++) store<f32>(dst + ((<usize>jj) << 2), load<f32>(TILE + ((<usize>jj) << 2)));
}

// ---- Backward -------------------------------------------------------------------------------------------------
//
// Both gradients are products with dout that leave out its zeros, over "vector taps": groups of 4 floats of a
// patch that lie contiguously in a copy of the input, read straight from the copy (no im2col).
//
// dw (outC × K) += Σ_n dout_n (outC × P) · patches_n, a chunk of images at a time. Per output channel o, one list
// of the nonzeros of its rows of dout over the chunk (left-packed four at a time: the byte offset of the
// position's patch in the copy, and the value), images in order, positions in order. Then per panel of up to 7
// vector taps seven f32x4 accumulators run down the list. Two layouts of the copy; dw takes the one with fewer
// vector taps:
//   runs   the images as they are (NCHW, padded): vector tap (c, di, q) holds x[c, i + di, j + 4q + 0..3], the k
//          taps of a row in ceil(k / 4) vectors (lanes past k are computed and dropped), panels of any 7 of
//          them through a table of offsets; best for small inC.
//   nhwc   the images with channels last, padded to c4 = inC rounded up to 4: vector tap (di, dj, q) holds
//          x[i + di, j + dj, 4q + 0..3]; a kernel row di's k·c4/4 vector taps are contiguous, so its panels read
//          7 consecutive vectors (lanes past inC, and a row's last panel past its taps, are dropped).
// dx, per image, in nhwc: per output position a list of its nonzero dout over the channels; per panel (up to 7
// vector taps of one kernel row) the accumulators sum value · w[o] (w rearranged in that order) and are added into
// the nhwc gradient at the patch; the gradient is transposed back.

// Vector taps per panel: seven f32x4 accumulators. With eight, V8 (Node 20) keeps one of them on the stack and
// the loop runs at under half the speed (measured: 2.5 vs 6.0 multiply-adds per ns).
const PANEL = 7;
const PANEL_BYTES: usize = PANEL * 16;
// Spare bytes after a copy of the input: a panel of a kernel row's last pixels reads up to 6 vectors past them.
const COPY_SPARE: usize = 128;

// Bytes of input copy per pass of dw (the images of a chunk): a pass gathers from all of them once per panel,
// so they should stay in the core's cache. Measured on convnet's conv2 (32→64 channels on 26×26, 86 KB per
// image, batch 64): dw alone 22-24 ms over the whole batch at once, 14 ms in chunks of 32 KB to 512 KB.
const DW_CHUNK_BYTES: usize = 256 << 10;

// For each 4-bit mask, the i8x16.swizzle that moves the 32-bit lanes whose bit is set to the front, in order.
// prettier-ignore
const PACK: usize = memory.data<u8>([
  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // 0000
  0, 1, 2, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // 0001: lane 0
  4, 5, 6, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // 0010: lane 1
  0, 1, 2, 3, 4, 5, 6, 7, 0, 0, 0, 0, 0, 0, 0, 0, // 0011
  8, 9, 10, 11, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // 0100
  0, 1, 2, 3, 8, 9, 10, 11, 0, 0, 0, 0, 0, 0, 0, 0, // 0101
  4, 5, 6, 7, 8, 9, 10, 11, 0, 0, 0, 0, 0, 0, 0, 0, // 0110
  0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 0, 0, 0, 0, // 0111
  12, 13, 14, 15, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // 1000
  0, 1, 2, 3, 12, 13, 14, 15, 0, 0, 0, 0, 0, 0, 0, 0, // 1001
  4, 5, 6, 7, 12, 13, 14, 15, 0, 0, 0, 0, 0, 0, 0, 0, // 1010
  0, 1, 2, 3, 4, 5, 6, 7, 12, 13, 14, 15, 0, 0, 0, 0, // 1011
  8, 9, 10, 11, 12, 13, 14, 15, 0, 0, 0, 0, 0, 0, 0, 0, // 1100
  0, 1, 2, 3, 8, 9, 10, 11, 12, 13, 14, 15, 0, 0, 0, 0, // 1101
  4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 0, 0, 0, 0, // 1110
  0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, // 1111
], 16);

/** The sizes backward works with and where the parts of its scratch lie (a static record: nothing is allocated). */
@unmanaged
class Plan {
  hp: i32;
  wp: i32;
  outH: i32;
  outW: i32;
  positions: i32;
  c4: i32;
  runs: bool; // dw's layout: runs (else nhwc)
  dwPanels: i32; // runs: ceil(vector taps / 7); nhwc: k·rowPanels, like dx's
  rowVectors: i32; // vector taps of one kernel row in nhwc: k·c4 / 4
  rowPanels: i32; // nhwc panels per kernel row (dx's, and dw's in nhwc)
  copyImage: usize; // bytes of one image in dw's copy
  chunk: i32; // images per pass of dw: as many as fit DW_CHUNK_BYTES of copy, so that a pass reads from cache
  listBytes: usize; // bytes of one of dw's lists: chunk·P + 4 entries
  // Byte addresses of the parts of the scratch, in order.
  dwTaps: usize; // dwPanels × 8 u32: runs: the 7 tap offsets of each panel; nhwc: the offset of its first
  dwPositions: usize; // P u32: byte offset of each output position's patch in an image of dw's copy
  copy: usize; // dw's copy of a chunk of images (none for runs without padding: x itself), COPY_SPARE after
  dwSum: usize; // outC × dwPanels × 7 vectors
  offs: usize; // outC lists of chunk·P + 4 u32 offsets
  vals: usize; // outC lists of chunk·P + 4 f32 values
  counts: usize; // outC u32: the lengths of those lists
  dbSum: usize; // outC f32: db's sums so far, carried from call to call
  lists: usize; // (with dx) P lists of outC (w row offset, value) entries: one image
  ends: usize; // (with dx) their ends
  wRows: usize; // (with dx) outC rows of k·rowPanels panels of 7 vectors: w in nhwc tap order
  dxNhwc: usize; // (with dx) the nhwc gradient of one padded image
  end: usize;
}

const PLAN: usize = memory.data(offsetof<Plan>(), 16);

/** Fills the static Plan for these sizes, its scratch starting at byte address `at`. */
function plan(batch: i32, inC: i32, h: i32, w: i32, outC: i32, k: i32, pad: i32, withDx: bool, at: usize): Plan {
  const p = changetype<Plan>(PLAN);
  p.hp = h + 2 * pad;
  p.wp = w + 2 * pad;
  p.outH = p.hp - k + 1;
  p.outW = p.wp - k + 1;
  p.positions = p.outH * p.outW;
  p.c4 = (inC + 3) & ~3;
  const runVectors = inC * k * ((k + 3) >> 2);
  p.rowVectors = (k * p.c4) >> 2;
  p.rowPanels = (p.rowVectors + PANEL - 1) / PANEL;
  p.runs = runVectors < k * p.rowVectors;
  p.dwPanels = p.runs ? (runVectors + PANEL - 1) / PANEL : k * p.rowPanels;
  const nhwcImage = <usize>p.hp * <usize>p.wp * <usize>p.c4 * 4;
  p.copyImage = p.runs ? <usize>inC * <usize>(pad > 0 ? p.hp * p.wp : h * w) * 4 : nhwcImage;
  const positions = <usize>p.positions;
  p.chunk = max(1, min(batch, <i32>(DW_CHUNK_BYTES / p.copyImage)));
  p.listBytes = (<usize>p.chunk * positions + 4) << 2;
  p.dwTaps = at;
  p.dwPositions = p.dwTaps + <usize>p.dwPanels * 32;
  p.copy = p.dwPositions + align16(positions * 4);
  p.dwSum = p.copy + (p.runs && pad == 0 ? 0 : align16(<usize>p.chunk * p.copyImage + COPY_SPARE));
  p.offs = p.dwSum + <usize>outC * <usize>p.dwPanels * PANEL_BYTES;
  p.vals = p.offs + align16(<usize>outC * p.listBytes);
  p.counts = p.vals + align16(<usize>outC * p.listBytes);
  p.dbSum = p.counts + align16(<usize>outC * 4);
  p.lists = p.dbSum + align16(<usize>outC * 4);
  p.ends = p.lists + (withDx ? positions * <usize>outC * 8 : 0);
  p.wRows = p.ends + (withDx ? align16(positions * 4) : 0);
  p.dxNhwc = p.wRows + (withDx ? <usize>outC * <usize>(k * p.rowPanels) * PANEL_BYTES : 0);
  p.end = p.dxNhwc + (withDx ? nhwcImage : 0);
  return p;
}

/** Bytes of scratch backward uses for these sizes, with or without dx. */
export function backwardScratchBytes(batch: i32, inC: i32, h: i32, w: i32, outC: i32, k: i32, pad: i32, withDx: i32): usize {
  return plan(batch, inC, h, w, outC, k, pad, withDx != 0, 0).end;
}

/** Offset of vector tap t in a table of panels: slot t % 7 of panel t / 7 (8 slots a panel). */
function storeTap(table: usize, t: i32, offset: i32): void {
  store<u32>(table + ((<usize>(t / PANEL)) << 5) + ((<usize>(t % PANEL)) << 2), <u32>offset);
}

/** The vector taps of dw's layout, as byte offsets from a patch's first tap; missing taps of the last panel: 0. */
function dwTapTable(p: Plan, inC: i32, k: i32): void {
  memory.fill(p.dwTaps, 0, <usize>p.dwPanels * 32);
  let t = 0;
  if (p.runs) {
    for (let c = 0; c < inC; c++) {
      for (let di = 0; di < k; di++) {
        for (let q = 0; q < k; q += 4) storeTap(p.dwTaps, t++, ((c * p.hp + di) * p.wp + q) << 2);
      }
    }
  } else {
    // Panel (di, r): the vector taps 7r.. of kernel row di, contiguous in the nhwc image.
    for (let di = 0; di < k; di++) {
      for (let r = 0; r < p.rowPanels; r++) storeTap(p.dwTaps, PANEL * t++, (di * p.wp * p.c4 + r * PANEL * 4) << 2);
    }
  }
  let at = p.dwPositions;
  const floats = p.runs ? 1 : p.c4;
  for (let i = 0; i < p.outH; i++) {
    for (let j = 0; j < p.outW; j++) {
      store<u32>(at, (<u32>((i * p.wp + j) * floats)) << 2);
      at += 4;
    }
  }
}

/**
 * Copies the image (inC, h, w) at src into the interior of the nhwc (h + 2·pad, w + 2·pad, c4) one at dst: blocks
 * of 4 channels × 4 pixels transposed in registers, the rest (channels past a multiple of 4, pixels past one of a
 * row) one by one. dst's channels past inC are not written.
 */
function toNhwc(src: usize, inC: i32, h: i32, w: i32, pad: i32, c4: i32, dst: usize): void {
  const wp = w + 2 * pad;
  const pixel = (<usize>c4) << 2;
  const plane = <usize>h * <usize>w * 4;
  const full = inC & ~3;
  for (let y = 0; y < h; y++) {
    const s0 = src + ((<usize>y * <usize>w) << 2);
    const d0 = dst + ((<usize>(((y + pad) * wp + pad) * c4)) << 2);
    let x = 0;
    for (; x + 4 <= w; x += 4) {
      for (let c = 0; c < full; c += 4) {
        const s = s0 + <usize>c * plane + ((<usize>x) << 2);
        const r0 = v128.load(s);
        const r1 = v128.load(s + plane);
        const r2 = v128.load(s + 2 * plane);
        const r3 = v128.load(s + 3 * plane);
        const t0 = v128.shuffle<f32>(r0, r1, 0, 4, 1, 5); // c0x0 c1x0 c0x1 c1x1
        const t1 = v128.shuffle<f32>(r2, r3, 0, 4, 1, 5);
        const t2 = v128.shuffle<f32>(r0, r1, 2, 6, 3, 7);
        const t3 = v128.shuffle<f32>(r2, r3, 2, 6, 3, 7);
        const d = d0 + <usize>x * pixel + ((<usize>c) << 2);
        v128.store(d, v128.shuffle<f64>(t0, t1, 0, 2));
        v128.store(d + pixel, v128.shuffle<f64>(t0, t1, 1, 3));
        v128.store(d + 2 * pixel, v128.shuffle<f64>(t2, t3, 0, 2));
        v128.store(d + 3 * pixel, v128.shuffle<f64>(t2, t3, 1, 3));
      }
      for (let c = full; c < inC; c++) {
        for (let xx = x; xx < x + 4; xx++)
          store<f32>(d0 + <usize>xx * pixel + ((<usize>c) << 2), load<f32>(s0 + <usize>c * plane + ((<usize>xx) << 2)));
      }
    }
    for (; x < w; x++) {
      for (let c = 0; c < inC; c++)
        store<f32>(d0 + <usize>x * pixel + ((<usize>c) << 2), load<f32>(s0 + <usize>c * plane + ((<usize>x) << 2)));
    }
  }
}

/** The interior of the nhwc (h + 2·pad, w + 2·pad, c4) image at src, as the image (inC, h, w) at dst: toNhwc reversed. */
function fromNhwc(src: usize, inC: i32, h: i32, w: i32, pad: i32, c4: i32, dst: usize): void {
  const wp = w + 2 * pad;
  const pixel = (<usize>c4) << 2;
  const plane = <usize>h * <usize>w * 4;
  const full = inC & ~3;
  for (let y = 0; y < h; y++) {
    const d0 = dst + ((<usize>y * <usize>w) << 2);
    const s0 = src + ((<usize>(((y + pad) * wp + pad) * c4)) << 2);
    let x = 0;
    for (; x + 4 <= w; x += 4) {
      for (let c = 0; c < full; c += 4) {
        const s = s0 + <usize>x * pixel + ((<usize>c) << 2);
        const p0 = v128.load(s); // pixel x: channels c..c+3
        const p1 = v128.load(s + pixel);
        const p2 = v128.load(s + 2 * pixel);
        const p3 = v128.load(s + 3 * pixel);
        const t0 = v128.shuffle<f32>(p0, p1, 0, 4, 1, 5);
        const t1 = v128.shuffle<f32>(p2, p3, 0, 4, 1, 5);
        const t2 = v128.shuffle<f32>(p0, p1, 2, 6, 3, 7);
        const t3 = v128.shuffle<f32>(p2, p3, 2, 6, 3, 7);
        const d = d0 + <usize>c * plane + ((<usize>x) << 2);
        v128.store(d, v128.shuffle<f64>(t0, t1, 0, 2));
        v128.store(d + plane, v128.shuffle<f64>(t0, t1, 1, 3));
        v128.store(d + 2 * plane, v128.shuffle<f64>(t2, t3, 0, 2));
        v128.store(d + 3 * plane, v128.shuffle<f64>(t2, t3, 1, 3));
      }
      for (let c = full; c < inC; c++) {
        for (let xx = x; xx < x + 4; xx++)
          store<f32>(d0 + <usize>c * plane + ((<usize>xx) << 2), load<f32>(s0 + <usize>xx * pixel + ((<usize>c) << 2)));
      }
    }
    for (; x < w; x++) {
      for (let c = 0; c < inC; c++)
        store<f32>(d0 + <usize>c * plane + ((<usize>x) << 2), load<f32>(s0 + <usize>x * pixel + ((<usize>c) << 2)));
    }
  }
}

/**
 * dw's lists for `batch` images (at most a chunk): for each output channel o, the nonzeros of dy[n, o, :] for
 * n = 0..batch-1 in order, as the patch offset (the position's entry of `positions` + n·imageBytes) at
 * offs + o·listBytes and the value at the same place of vals; the count at counts + 4o. Four at a time,
 * branch-free: the nonzero lanes are moved to the front (PACK) and whole vectors stored (4 spare entries).
 */
function listRows(dy: usize, batch: i32, outC: i32, cols: i32, positions: usize, imageBytes: usize, p: Plan): void {
  const zero = f32x4.splat(0);
  for (let o = 0; o < outC; o++) {
    const o0 = p.offs + <usize>o * p.listBytes;
    const v0 = p.vals + <usize>o * p.listBytes;
    let n: usize = 0; // bytes listed
    for (let b = 0; b < batch; b++) {
      let ap = dy + ((<usize>(b * outC + o) * <usize>cols) << 2);
      const shift = i32x4.splat(<i32>(<usize>b * imageBytes));
      let c = 0;
      for (; c + 4 <= cols; c += 4) {
        const v = v128.load(ap);
        const mask = i32x4.bitmask(f32x4.ne(v, zero));
        const shuffle = v128.load(PACK + ((<usize>mask) << 4));
        v128.store(v0 + n, i8x16.swizzle(v, shuffle));
        v128.store(o0 + n, i8x16.swizzle(i32x4.add(v128.load(positions + ((<usize>c) << 2)), shift), shuffle));
        n += (<usize>popcnt<i32>(mask)) << 2;
        ap += 16;
      }
      for (; c < cols; c++) {
        const x = load<f32>(ap);
        store<f32>(v0 + n, x);
        store<u32>(o0 + n, load<u32>(positions + ((<usize>c) << 2)) + <u32>(<usize>b * imageBytes));
        n += select<usize>(4, 0, x != 0);
        ap += 4;
      }
    }
    store<u32>(p.counts + ((<usize>o) << 2), <u32>(n >> 2));
  }
}

/** Appends (offset, x) to the list ending at `end` and returns the new end: past the entry only when x ≠ 0. */
function entry(end: usize, offset: usize, x: f32): usize {
  store<u32>(end, <u32>offset);
  store<f32>(end, x, 4);
  return end + select<usize>(8, 0, x != 0);
}

/**
 * dx's lists: the columns of A (rows × cols at a), column c's nonzeros as (r·stride, value) entries at
 * lists + c·rows·8, its end at ends + 4c. Four columns at a time, skipping rows where all four are zero.
 */
function listColumns(a: usize, rows: i32, cols: i32, stride: usize, lists: usize, ends: usize): void {
  const zero = f32x4.splat(0);
  const listBytes = (<usize>rows) << 3;
  const aRow = (<usize>cols) << 2;
  let c = 0;
  for (; c + 4 <= cols; c += 4) {
    let e0 = lists + <usize>c * listBytes;
    let e1 = e0 + listBytes;
    let e2 = e1 + listBytes;
    let e3 = e2 + listBytes;
    let ap = a + ((<usize>c) << 2);
    for (let r = 0; r < rows; r++) {
      if (v128.any_true(f32x4.ne(v128.load(ap), zero))) {
        const o = <usize>r * stride;
        e0 = entry(e0, o, load<f32>(ap));
        e1 = entry(e1, o, load<f32>(ap, 4));
        e2 = entry(e2, o, load<f32>(ap, 8));
        e3 = entry(e3, o, load<f32>(ap, 12));
      }
      ap += aRow;
    }
    const at = ends + ((<usize>c) << 2);
    store<u32>(at, <u32>e0);
    store<u32>(at, <u32>e1, 4);
    store<u32>(at, <u32>e2, 8);
    store<u32>(at, <u32>e3, 12);
  }
  for (; c < cols; c++) {
    let end = lists + <usize>c * listBytes;
    let ap = a + ((<usize>c) << 2);
    for (let r = 0; r < rows; r++) {
      end = entry(end, <usize>r * stride, load<f32>(ap));
      ap += aRow;
    }
    store<u32>(ends + ((<usize>c) << 2), <u32>end);
  }
}

/**
 * One panel of dw: the 7 vectors at dst += Σ over the `count` entries (offset at offs, value at vals) of
 * value · the vector taps at src + offset + taps[t], in list order.
 */
function dwPanel(offs: usize, vals: usize, count: i32, src: usize, taps: usize, dst: usize): void {
  const t0 = <usize>load<u32>(taps);
  const t1 = <usize>load<u32>(taps, 4);
  const t2 = <usize>load<u32>(taps, 8);
  const t3 = <usize>load<u32>(taps, 12);
  const t4 = <usize>load<u32>(taps, 16);
  const t5 = <usize>load<u32>(taps, 20);
  const t6 = <usize>load<u32>(taps, 24);
  let c0 = v128.load(dst),
    c1 = v128.load(dst, 16),
    c2 = v128.load(dst, 32),
    c3 = v128.load(dst, 48);
  let c4 = v128.load(dst, 64),
    c5 = v128.load(dst, 80),
    c6 = v128.load(dst, 96);
  const stop = offs + ((<usize>count) << 2);
  let v = vals;
  for (let e = offs; e < stop; e += 4) {
    const x = v128.load32_splat(v);
    const p = src + <usize>load<u32>(e);
    c0 = madd(x, v128.load(p + t0), c0);
    c1 = madd(x, v128.load(p + t1), c1);
    c2 = madd(x, v128.load(p + t2), c2);
    c3 = madd(x, v128.load(p + t3), c3);
    c4 = madd(x, v128.load(p + t4), c4);
    c5 = madd(x, v128.load(p + t5), c5);
    c6 = madd(x, v128.load(p + t6), c6);
    v += 4;
  }
  v128.store(dst, c0);
  v128.store(dst, c1, 16);
  v128.store(dst, c2, 32);
  v128.store(dst, c3, 48);
  v128.store(dst, c4, 64);
  v128.store(dst, c5, 80);
  v128.store(dst, c6, 96);
}

/** dwPanel for 7 contiguous vector taps: those at src + offset + 0, 16, .., 96. */
function dwPanelRun(offs: usize, vals: usize, count: i32, src: usize, dst: usize): void {
  let c0 = v128.load(dst),
    c1 = v128.load(dst, 16),
    c2 = v128.load(dst, 32),
    c3 = v128.load(dst, 48);
  let c4 = v128.load(dst, 64),
    c5 = v128.load(dst, 80),
    c6 = v128.load(dst, 96);
  const stop = offs + ((<usize>count) << 2);
  let v = vals;
  for (let e = offs; e < stop; e += 4) {
    const x = v128.load32_splat(v);
    const p = src + <usize>load<u32>(e);
    c0 = madd(x, v128.load(p), c0);
    c1 = madd(x, v128.load(p, 16), c1);
    c2 = madd(x, v128.load(p, 32), c2);
    c3 = madd(x, v128.load(p, 48), c3);
    c4 = madd(x, v128.load(p, 64), c4);
    c5 = madd(x, v128.load(p, 80), c5);
    c6 = madd(x, v128.load(p, 96), c6);
    v += 4;
  }
  v128.store(dst, c0);
  v128.store(dst, c1, 16);
  v128.store(dst, c2, 32);
  v128.store(dst, c3, 48);
  v128.store(dst, c4, 64);
  v128.store(dst, c5, 80);
  v128.store(dst, c6, 96);
}

/**
 * One panel of dx at one output position: Σ over the list [start, end) of value · the 7 vectors at w + offset
 * (in list order), the first `count` of them added to the contiguous vectors at dst.
 */
function dxPanel(start: usize, end: usize, w: usize, dst: usize, count: i32): void {
  let c0 = f32x4.splat(0),
    c1 = f32x4.splat(0),
    c2 = f32x4.splat(0),
    c3 = f32x4.splat(0);
  let c4 = f32x4.splat(0),
    c5 = f32x4.splat(0),
    c6 = f32x4.splat(0);
  for (let e = start; e < end; e += 8) {
    const x = v128.load32_splat(e, 4);
    const p = w + <usize>load<u32>(e);
    c0 = madd(x, v128.load(p), c0);
    c1 = madd(x, v128.load(p, 16), c1);
    c2 = madd(x, v128.load(p, 32), c2);
    c3 = madd(x, v128.load(p, 48), c3);
    c4 = madd(x, v128.load(p, 64), c4);
    c5 = madd(x, v128.load(p, 80), c5);
    c6 = madd(x, v128.load(p, 96), c6);
  }
  v128.store(dst, f32x4.add(v128.load(dst), c0));
  if (count > 1) v128.store(dst, f32x4.add(v128.load(dst, 16), c1), 16);
  if (count > 2) v128.store(dst, f32x4.add(v128.load(dst, 32), c2), 32);
  if (count > 3) v128.store(dst, f32x4.add(v128.load(dst, 48), c3), 48);
  if (count > 4) v128.store(dst, f32x4.add(v128.load(dst, 64), c4), 64);
  if (count > 5) v128.store(dst, f32x4.add(v128.load(dst, 80), c5), 80);
  if (count > 6) v128.store(dst, f32x4.add(v128.load(dst, 96), c6), 96);
}

/** Sum of the n floats at a: four lanes in two accumulators, then added, then the tail. */
function sum(a: usize, n: i32): f32 {
  let s0 = f32x4.splat(0);
  let s1 = f32x4.splat(0);
  let i = 0;
  for (; i + 8 <= n; i += 8) {
    const p = a + ((<usize>i) << 2);
    s0 = f32x4.add(s0, v128.load(p));
    s1 = f32x4.add(s1, v128.load(p, 16));
  }
  if (i + 4 <= n) {
    s0 = f32x4.add(s0, v128.load(a + ((<usize>i) << 2)));
    i += 4;
  }
  const acc = f32x4.add(s0, s1);
  let s = f32x4.extract_lane(acc, 0) + f32x4.extract_lane(acc, 1) + (f32x4.extract_lane(acc, 2) + f32x4.extract_lane(acc, 3));
  for (; i < n; i++) s += load<f32>(a + ((<usize>i) << 2));
  return s;
}

/**
 * From dy (batch, outC, outH, outW): dw (outC, inC, k, k) += Σ dy ⊗ patches, db (outC) += Σ dy, and, when dx is
 * not 0, dx (batch, inC, h, w) = the gradient of x (overwritten). x (followed by 32 spare bytes), w, dy, dw, db,
 * dx are byte addresses past the scratch at base(); w is read only for dx. The three phases below in one call.
 */
export function backward(
  batch: i32,
  inC: i32,
  h: i32,
  w: i32,
  outC: i32,
  k: i32,
  pad: i32,
  x: usize,
  wt: usize,
  dy: usize,
  dw: usize,
  db: usize,
  dx: usize,
): void {
  backwardBegin(batch, inC, h, w, outC, k, pad, wt, dx != 0 ? 1 : 0);
  backwardImages(batch, batch, inC, h, w, outC, k, pad, x, dy, dx);
  backwardEnd(batch, inC, h, w, outC, k, pad, dw, db, dx != 0 ? 1 : 0);
}

// The backward in phases, so that a caller can pass the batch a few images at a time (and keep its memory small):
// backwardBegin, then backwardImages for consecutive groups of at most `most` images, in order, then backwardEnd.
// The sums of dw and db carry over in the scratch from call to call and are added into dw and db at the end, so
// the grouping changes no result: the bits are those of backward over the whole batch. Each phase takes the same
// sizes, `most` included (the scratch's layout depends on it), and nothing else may use the scratch in between.

/** Zeroes the sums and prepares dw's tap table and, when withDx is not 0, w (at wt) in dx's order. */
export function backwardBegin(most: i32, inC: i32, h: i32, w: i32, outC: i32, k: i32, pad: i32, wt: usize, withDx: i32): void {
  const p = plan(most, inC, h, w, outC, k, pad, withDx != 0, base());
  memory.fill(p.dbSum, 0, <usize>outC * 4);
  dwTapTable(p, inC, k);
  // The copy's border (and nhwc's channels past inC) stay zero: the images only ever fill its interior.
  if (!p.runs || pad > 0) memory.fill(p.copy, 0, <usize>p.chunk * p.copyImage);
  memory.fill(p.dwSum, 0, <usize>outC * <usize>p.dwPanels * PANEL_BYTES);
  if (withDx == 0) return;
  // dx: w in nhwc tap order, panel (di, r) holding vector taps r·7.. of kernel row di (channels past inC zero).
  const c4 = p.c4;
  const xRow = <usize>(k * p.rowPanels) * PANEL_BYTES;
  memory.fill(p.wRows, 0, <usize>outC * xRow);
  for (let o = 0; o < outC; o++) {
    for (let c = 0; c < inC; c++) {
      for (let di = 0; di < k; di++) {
        for (let dj = 0; dj < k; dj++) {
          const t = dj * c4 + c; // float of the kernel row
          const panel = di * p.rowPanels + t / (PANEL * 4);
          const at = p.wRows + <usize>o * xRow + <usize>panel * PANEL_BYTES + ((<usize>(t % (PANEL * 4))) << 2);
          store<f32>(at, load<f32>(wt + ((<usize>(((o * inC + c) * k + di) * k + dj)) << 2)));
        }
      }
    }
  }
}

/**
 * The next `images` (≤ most) images of the batch: x (images, inC, h, w) followed by 32 spare bytes and dy
 * (images, outC, outH, outW) add into the sums; when dx is not 0 (and backwardBegin had withDx), dx (images, inC,
 * h, w) = their input gradient.
 */
export function backwardImages(
  most: i32,
  images: i32,
  inC: i32,
  h: i32,
  w: i32,
  outC: i32,
  k: i32,
  pad: i32,
  x: usize,
  dy: usize,
  dx: usize,
): void {
  const p = plan(most, inC, h, w, outC, k, pad, dx != 0, base());
  const positions = p.positions;
  const c4 = p.c4;
  const imageBytes = <usize>inC * <usize>h * <usize>w * 4;
  const dyImage = <usize>outC * <usize>positions * 4;

  for (let o = 0; o < outC; o++) {
    const at = p.dbSum + ((<usize>o) << 2);
    let s = load<f32>(at);
    for (let n = 0; n < images; n++) s += sum(dy + <usize>n * dyImage + <usize>o * <usize>positions * 4, positions);
    store<f32>(at, s);
  }

  // dw, a chunk of images at a time: their copy, lists, panels. The sums carry over from chunk to chunk, so the
  // chunk size changes no result.
  const copied = !p.runs || pad > 0;
  const dwRow = <usize>p.dwPanels * PANEL_BYTES;
  for (let n0 = 0; n0 < images; n0 += p.chunk) {
    const chunk = min(p.chunk, images - n0);
    let src = x + <usize>n0 * imageBytes;
    if (copied) {
      for (let n = 0; n < chunk; n++) {
        const from = x + <usize>(n0 + n) * imageBytes;
        const to = p.copy + <usize>n * p.copyImage;
        if (p.runs) padInto(from, to, inC, h, w, pad);
        else toNhwc(from, inC, h, w, pad, c4, to);
      }
      src = p.copy;
    }
    listRows(dy + <usize>n0 * dyImage, chunk, outC, positions, p.dwPositions, p.copyImage, p);
    for (let q = 0; q < p.dwPanels; q++) {
      const taps = p.dwTaps + ((<usize>q) << 5);
      for (let o = 0; o < outC; o++) {
        const count = <i32>load<u32>(p.counts + ((<usize>o) << 2));
        const list = <usize>o * p.listBytes;
        const sums = p.dwSum + <usize>o * dwRow + <usize>q * PANEL_BYTES;
        if (p.runs) dwPanel(p.offs + list, p.vals + list, count, src, taps, sums);
        else dwPanelRun(p.offs + list, p.vals + list, count, src + <usize>load<u32>(taps), sums);
      }
    }
  }
  if (!dx) return;

  const rowVectors = p.rowVectors;
  const xRow = <usize>(k * p.rowPanels) * PANEL_BYTES;
  const nhwcImage = <usize>p.hp * <usize>p.wp * <usize>c4 * 4;
  const pixel = (<usize>c4) << 2;
  const nhwcRow = <usize>p.wp * pixel;
  for (let n = 0; n < images; n++) {
    memory.fill(p.dxNhwc, 0, nhwcImage);
    listColumns(dy + <usize>n * dyImage, outC, positions, xRow, p.lists, p.ends);
    for (let q = 0; q < positions; q++) {
      const start = p.lists + ((<usize>q * <usize>outC) << 3);
      const end = <usize>load<u32>(p.ends + ((<usize>q) << 2));
      if (start == end) continue;
      const i = q / p.outW;
      const at = p.dxNhwc + <usize>i * nhwcRow + <usize>(q - i * p.outW) * pixel;
      for (let di = 0; di < k; di++) {
        for (let r = 0; r < p.rowPanels; r++) {
          const wp = p.wRows + <usize>(di * p.rowPanels + r) * PANEL_BYTES;
          dxPanel(start, end, wp, at + <usize>di * nhwcRow + <usize>r * PANEL_BYTES, min(PANEL, rowVectors - r * PANEL));
        }
      }
    }
    fromNhwc(p.dxNhwc, inC, h, w, pad, c4, dx + <usize>n * imageBytes);
  }
}

/** dw (outC, inC, k, k) += the sums of the images passed, db (outC) += theirs. */
export function backwardEnd(most: i32, inC: i32, h: i32, w: i32, outC: i32, k: i32, pad: i32, dw: usize, db: usize, withDx: i32): void {
  const p = plan(most, inC, h, w, outC, k, pad, withDx != 0, base());
  for (let o = 0; o < outC; o++) {
    const d = db + ((<usize>o) << 2);
    store<f32>(d, load<f32>(d) + load<f32>(p.dbSum + ((<usize>o) << 2)));
  }
  // From where the layout holds tap (c, di, dj): vector tap t's lanes are floats 4t..4t+3.
  const dwRow = <usize>p.dwPanels * PANEL_BYTES;
  const r4 = (k + 3) & ~3;
  for (let o = 0; o < outC; o++) {
    const s = p.dwSum + <usize>o * dwRow;
    for (let c = 0; c < inC; c++) {
      for (let di = 0; di < k; di++) {
        for (let dj = 0; dj < k; dj++) {
          const from = p.runs ? (c * k + di) * r4 + dj : di * p.rowPanels * PANEL * 4 + dj * p.c4 + c;
          const d = dw + ((<usize>(((o * inC + c) * k + di) * k + dj)) << 2);
          store<f32>(d, load<f32>(d) + load<f32>(s + ((<usize>from) << 2)));
        }
      }
    }
  }
}
