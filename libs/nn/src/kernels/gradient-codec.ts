// Gradient codecs: how a shard's gradient sum may be shrunk before it travels (issue 13, `--compress`).
//   none  float32 as it is                       4 bytes a value
//   fp16  IEEE half, round to nearest even       2 bytes a value
//   bf16  bfloat16, round to nearest even        2 bytes a value
//   int8  per block of INT8_BLOCK values: a float32 scale = max|x|/127, then round(x/scale) ties to even in ±127;
//         layout [scale × ceil(n/INT8_BLOCK)][code × n]   1 + 4/INT8_BLOCK bytes a value (0.254× of none)
// Overflow: a value whose fp16 (|x| ≥ 65520) or bf16 rounding would be infinite, or any non-finite input, is
// refused with a GradientCodecError naming the index and the value — never sent as ∞. (int8 cannot overflow; bf16
// only within a hair of float32's max.) Decoding checks everything read: length, finite scales ≥ 0, no ∞/NaN half,
// no code −128, no code ≠ 0 in a block of scale 0. Plain references: gradient-codec-reference.ts.

import { roundHalfEven } from './gradient-codec-reference.js';

export type GradientCodec = 'none' | 'fp16' | 'bf16' | 'int8';
export const GRADIENT_CODECS: readonly GradientCodec[] = ['none', 'fp16', 'bf16', 'int8'];
export const INT8_BLOCK = 256;
const ROUND_TO_INTEGER = 6755399441055744; // 1.5 · 2^52

/** A gradient that a codec cannot carry, or bytes that are not a valid encoding; the message says which value. */
export class GradientCodecError extends Error {
  override readonly name = 'GradientCodecError';
}

/**
 * Whether `codec` is sent with error feedback (encodeWithErrorFeedback): each shard keeps a residual of what the
 * encoding dropped and adds it to its next gradient. The one place that says which codecs do: int8.
 */
export function keepsResidual(codec: GradientCodec): boolean {
  return codec === 'int8';
}

/** Bytes of `n` values encoded with `codec`. */
export function encodedGradientBytes(codec: GradientCodec, n: number): number {
  switch (codec) {
    case 'none':
      return 4 * n;
    case 'fp16':
    case 'bf16':
      return 2 * n;
    case 'int8':
      return n + 4 * Math.ceil(n / INT8_BLOCK);
  }
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
/** Whether this machine stores a float32 as the codecs' little-endian bytes (then they copy a view's values). */
const LITTLE_ENDIAN = new Uint8Array(new Float32Array([1]).buffer)[3] === 0x3f;
const FLOAT32_MAX = 3.4028234663852886e38;

/** Throws for the first value of `x` that is not finite (x − x is 0 for every finite x, NaN otherwise). */
function checkFinite(x: Float32Array): void {
  for (let i = 0; i < x.length; i++) {
    const v = x[i];
    if (v - v !== 0) throw overflow('float32', v, i);
  }
}

/** float32 → float16 bits, round to nearest even; throws where the result would be ∞ or the input is not finite. */
export function fp16Bits(x: number, index = 0): number {
  f32[0] = x;
  const bits = u32[0];
  const sign = (bits >>> 16) & 0x8000;
  const abs = bits & 0x7fffffff;
  if (abs >= 0x477ff000) throw overflow('fp16', x, index); // ≥ 65520 rounds to ∞ (and ∞, NaN)
  if (abs < 0x38800000) return sign | roundHalfEven(Math.abs(f32[0]) * 16777216); // subnormal half: steps of 2^-24
  return sign | (((abs + 0xfff + ((abs >>> 13) & 1)) >>> 13) - 0x1c000); // rebias 127 → 15
}

/** float16 bits → value (exact in float32); NaN for the ∞/NaN codes, which decoding refuses. */
function fp16Value(h: number): number {
  const e = (h >>> 10) & 0x1f;
  const m = h & 0x3ff;
  const v = e === 0 ? m * 2 ** -24 : e === 31 ? NaN : (1 + m / 1024) * 2 ** (e - 15);
  return h & 0x8000 ? -v : v;
}
const FP16_TABLE = Float32Array.from({ length: 65536 }, (_, h) => fp16Value(h));

/** float32 → bfloat16 bits, round to nearest even; throws where the result would be ∞ or the input is not finite. */
export function bf16Bits(x: number, index = 0): number {
  f32[0] = x;
  const bits = u32[0];
  if ((bits & 0x7fffffff) >= 0x7f7f8000) throw overflow('bf16', x, index);
  return (bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16;
}

function overflow(codec: string, x: number, index: number): GradientCodecError {
  const why = Number.isFinite(x) ? `overflows ${codec} (it would become ∞)` : `is not finite`;
  return new GradientCodecError(
    `gradient value ${index} is ${x}: it ${why}; use --compress int8 (per-block scales) or none, or lower the learning rate / clip`,
  );
}

/** int8 block scale from the block's max |x|: max / 127 as float32, at least the smallest subnormal; 0 for max 0. */
function int8Scale(max: number): number {
  return max === 0 ? 0 : Math.max(Math.fround(max / 127), 2 ** -149);
}

/**
 * The int8 code of x under a scale > 0: roundHalfEven(x / scale) within ±127, 3× faster than the call: adding and
 * subtracting 1.5 · 2^52 rounds a float64 to an integer, ties to even (IEEE's own rounding), for |x / scale| < 2^51.
 */
function int8Code(x: number, scale: number): number {
  const r = x / scale + ROUND_TO_INTEGER - ROUND_TO_INTEGER;
  return r > 127 ? 127 : r < -127 ? -127 : r;
}

/** Encodes `x` with `codec` into `out` (encodedGradientBytes(codec, x.length) bytes). */
export function encodeGradient(codec: GradientCodec, x: Float32Array, out: Uint8Array): void {
  const size = encodedGradientBytes(codec, x.length);
  if (out.byteLength !== size) throw new Error(`encodeGradient ${codec}: out has ${out.byteLength} bytes, expected ${size}`);
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
  switch (codec) {
    case 'none':
      if (LITTLE_ENDIAN && out.byteOffset % 4 === 0) {
        checkFinite(x);
        new Float32Array(out.buffer, out.byteOffset, x.length).set(x);
        return;
      }
      for (let i = 0; i < x.length; i++) {
        if (!Number.isFinite(x[i])) throw overflow('float32', x[i], i);
        view.setFloat32(4 * i, x[i], true);
      }
      return;
    case 'fp16':
      for (let i = 0; i < x.length; i++) view.setUint16(2 * i, fp16Bits(x[i], i), true);
      return;
    case 'bf16':
      if (LITTLE_ENDIAN && out.byteOffset % 2 === 0) {
        // bf16Bits on each value's bits, read and written through integer views (no call, no DataView).
        const bits = new Uint32Array(x.buffer, x.byteOffset, x.length);
        const halves = new Uint16Array(out.buffer, out.byteOffset, x.length);
        for (let i = 0; i < bits.length; i++) {
          const b = bits[i];
          if ((b & 0x7fffffff) >= 0x7f7f8000) throw overflow('bf16', x[i], i);
          halves[i] = (b + 0x7fff + ((b >>> 16) & 1)) >>> 16;
        }
        return;
      }
      for (let i = 0; i < x.length; i++) view.setUint16(2 * i, bf16Bits(x[i], i), true);
      return;
    case 'int8': {
      const blocks = Math.ceil(x.length / INT8_BLOCK);
      const codes = new Int8Array(out.buffer, out.byteOffset + 4 * blocks, x.length);
      for (let b = 0; b < blocks; b++) {
        const start = b * INT8_BLOCK;
        const end = Math.min(x.length, start + INT8_BLOCK);
        let max = 0;
        for (let i = start; i < end; i++) {
          const a = Math.abs(x[i]);
          if (!(a <= FLOAT32_MAX)) throw overflow('int8', x[i], i);
          if (a > max) max = a;
        }
        const scale = int8Scale(max);
        view.setFloat32(4 * b, scale, true);
        if (scale === 0) {
          codes.fill(0, start, end);
          continue;
        }
        for (let i = start; i < end; i++) codes[i] = int8Code(x[i], scale);
      }
      return;
    }
  }
}

/** Decodes `bytes` (encoded with `codec`) into `into`, checking all of it; on error `into` may be partly written. */
export function decodeGradientInto(codec: GradientCodec, bytes: Uint8Array, into: Float32Array): void {
  const size = encodedGradientBytes(codec, into.length);
  if (bytes.byteLength !== size) {
    throw new GradientCodecError(`${codec} gradient: ${bytes.byteLength} bytes, expected ${size} for ${into.length} values`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  switch (codec) {
    case 'none':
      if (LITTLE_ENDIAN && bytes.byteOffset % 4 === 0) {
        const values = new Float32Array(bytes.buffer, bytes.byteOffset, into.length);
        for (let i = 0; i < values.length; i++) {
          const v = values[i];
          if (v - v !== 0) throw new GradientCodecError(`float32 gradient value ${i} is ${v}`);
        }
        into.set(values);
        return;
      }
      for (let i = 0; i < into.length; i++) {
        const v = view.getFloat32(4 * i, true);
        if (!Number.isFinite(v)) throw new GradientCodecError(`float32 gradient value ${i} is ${v}`);
        into[i] = v;
      }
      return;
    case 'fp16':
      for (let i = 0; i < into.length; i++) {
        const h = view.getUint16(2 * i, true);
        const v = FP16_TABLE[h];
        if (v !== v) throw new GradientCodecError(`fp16 gradient value ${i} has bits 0x${h.toString(16)} (∞ or NaN)`);
        into[i] = v;
      }
      return;
    case 'bf16':
      if (LITTLE_ENDIAN && bytes.byteOffset % 2 === 0) {
        const halves = new Uint16Array(bytes.buffer, bytes.byteOffset, into.length);
        const bits = new Uint32Array(into.buffer, into.byteOffset, into.length);
        for (let i = 0; i < halves.length; i++) {
          const h = halves[i];
          if ((h & 0x7f80) === 0x7f80) throw new GradientCodecError(`bf16 gradient value ${i} has bits 0x${h.toString(16)} (∞ or NaN)`);
          bits[i] = h << 16;
        }
        return;
      }
      for (let i = 0; i < into.length; i++) {
        const h = view.getUint16(2 * i, true);
        if ((h & 0x7f80) === 0x7f80) throw new GradientCodecError(`bf16 gradient value ${i} has bits 0x${h.toString(16)} (∞ or NaN)`);
        u32[0] = h << 16;
        into[i] = f32[0];
      }
      return;
    case 'int8':
      return decodeInt8Into(bytes, into);
  }
}

/**
 * int8 decoding: value = code × its block's scale (float32), after checking the block (a finite scale ≥ 0, no code
 * −128, only zeros under scale 0). Scales are read through a Float32Array view where the bytes are aligned. A block
 * of scale 0 is filled with zeros, the value every code 0 gives; one loop a block, as small as it can be: inside the
 * codec switch, with the checks in the loop, V8 ran this at 2.2–2.5 ms for 101,770 values of a real gradient, against 0.1–0.2 ms now.
 */
function decodeInt8Into(bytes: Uint8Array, into: Float32Array): void {
  const n = into.length;
  const blocks = Math.ceil(n / INT8_BLOCK);
  const scales = int8Scales(bytes, blocks);
  const codes = new Int8Array(bytes.buffer, bytes.byteOffset + 4 * blocks, n);
  for (let b = 0; b < blocks; b++) {
    const scale = scales[b];
    if (!(scale >= 0 && scale < Infinity)) throw new GradientCodecError(`int8 gradient block ${b} has scale ${scale} (not finite ≥ 0)`);
    const start = b * INT8_BLOCK;
    const end = Math.min(n, start + INT8_BLOCK);
    if (scale === 0) {
      for (let i = start; i < end; i++) {
        if (codes[i] !== 0) throw new GradientCodecError(`int8 gradient value ${i} has code ${codes[i]} in a block of scale 0`);
      }
      into.fill(0, start, end);
      continue;
    }
    for (let i = start; i < end; i++) {
      const c = codes[i];
      if (c === -128) throw new GradientCodecError(`int8 gradient value ${i} has code -128 (codes are within ±127)`);
      into[i] = Math.fround(c * scale);
    }
  }
}

/** The block scales at the start of an int8 encoding: a view of them when aligned, else a copy read little-endian. */
function int8Scales(bytes: Uint8Array, blocks: number): Float32Array {
  if (LITTLE_ENDIAN && bytes.byteOffset % 4 === 0) return new Float32Array(bytes.buffer, bytes.byteOffset, blocks);
  const view = new DataView(bytes.buffer, bytes.byteOffset, 4 * blocks);
  return Float32Array.from({ length: blocks }, (_, b) => view.getFloat32(4 * b, true));
}

/**
 * One error-feedback step (EF-SGD, 1-bit Adam): sends Q(g + e) and keeps e ← (g + e) − D(Q(g + e)). Writes the
 * encoding of g + e to `out` and updates `residual` in place (float32, element by element, so the result is a
 * function of g and e alone). With 'none' the residual stays zero. `scratch` receives D(Q(g + e)); pass one to reuse.
 * int8 runs fused, a block at a time (int8WithErrorFeedback); every codec gives the bits of
 * encodeWithErrorFeedbackComposed, its definition.
 */
export function encodeWithErrorFeedback(
  codec: GradientCodec,
  gradient: Float32Array,
  residual: Float32Array,
  out: Uint8Array,
  scratch: Float32Array = new Float32Array(gradient.length),
): void {
  if (codec !== 'int8') return encodeWithErrorFeedbackComposed(codec, gradient, residual, out, scratch);
  checkErrorFeedbackBuffers(gradient, residual, scratch);
  const size = encodedGradientBytes(codec, gradient.length);
  if (out.byteLength !== size) throw new Error(`encodeWithErrorFeedback int8: out has ${out.byteLength} bytes, expected ${size}`);
  int8WithErrorFeedback(gradient, residual, out, scratch);
}

/** Error feedback as its definition says, pass by pass: e += g, encode e, decode it into scratch, e −= scratch. */
export function encodeWithErrorFeedbackComposed(
  codec: GradientCodec,
  gradient: Float32Array,
  residual: Float32Array,
  out: Uint8Array,
  scratch: Float32Array = new Float32Array(gradient.length),
): void {
  checkErrorFeedbackBuffers(gradient, residual, scratch);
  for (let i = 0; i < gradient.length; i++) residual[i] += gradient[i]; // float32 storage rounds g + e
  encodeGradient(codec, residual, out);
  decodeGradientInto(codec, out, scratch);
  for (let i = 0; i < gradient.length; i++) residual[i] -= scratch[i]; // float32 (g + e) − D(Q(g + e))
}

function checkErrorFeedbackBuffers(gradient: Float32Array, residual: Float32Array, scratch: Float32Array): void {
  if (residual.length !== gradient.length || scratch.length !== gradient.length) {
    throw new Error(`encodeWithErrorFeedback: gradient ${gradient.length}, residual ${residual.length}, scratch ${scratch.length} values`);
  }
}

/**
 * int8 error feedback in two passes over each block of 256 (which stays in cache) instead of six over the whole
 * gradient: e ← fround(e + g) and the block's max |e|, then each code, its decoded value and e − that value. The
 * arithmetic is the composed one's, value by value, so the bytes and the residual are the same (tested). On a
 * value that is not finite it throws, with the residual partly updated (as the composed one leaves it).
 */
function int8WithErrorFeedback(g: Float32Array, e: Float32Array, out: Uint8Array, scratch: Float32Array): void {
  const n = g.length;
  const blocks = Math.ceil(n / INT8_BLOCK);
  const view = new DataView(out.buffer, out.byteOffset, 4 * blocks);
  const codes = new Int8Array(out.buffer, out.byteOffset + 4 * blocks, n);
  for (let b = 0; b < blocks; b++) {
    const start = b * INT8_BLOCK;
    const end = Math.min(n, start + INT8_BLOCK);
    let max = 0;
    for (let i = start; i < end; i++) {
      const r = Math.fround(e[i] + g[i]);
      e[i] = r;
      const a = Math.abs(r);
      if (!(a <= FLOAT32_MAX)) throw overflow('int8', r, i);
      if (a > max) max = a;
    }
    const scale = int8Scale(max);
    view.setFloat32(4 * b, scale, true);
    if (scale === 0) {
      codes.fill(0, start, end);
      scratch.fill(0, start, end); // e − 0 = e: the residual stays
      continue;
    }
    for (let i = start; i < end; i++) {
      const r = e[i];
      const c = int8Code(r, scale);
      codes[i] = c;
      const d = Math.fround(c * scale);
      scratch[i] = d;
      e[i] = r - d;
    }
  }
}
