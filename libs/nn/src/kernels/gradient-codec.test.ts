import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { bf16RoundReference, fp16RoundReference, int8CodeReference, int8ScaleReference } from './gradient-codec-reference.js';
import {
  decodeGradientInto,
  encodedGradientBytes,
  encodeGradient,
  encodeWithErrorFeedback,
  encodeWithErrorFeedbackComposed,
  GradientCodecError,
  INT8_BLOCK,
  type GradientCodec,
} from './gradient-codec.js';

interface Fixture {
  fp16_in: number[];
  fp16_out: number[];
  bf16_in: number[];
  bf16_out: number[];
  int8_in: number[];
  int8_scales: number[];
  int8_codes: number[];
}
// PyTorch's .half() / .bfloat16() and NumPy's int8 blocks (fixtures/make_gradient_codec_fixture.py).
const fixture = JSON.parse(readFileSync(new URL('../../fixtures/gradient-codec.json', import.meta.url), 'utf8')) as Fixture;

function roundTrip(codec: GradientCodec, x: Float32Array): Float32Array {
  const bytes = new Uint8Array(encodedGradientBytes(codec, x.length));
  encodeGradient(codec, x, bytes);
  const out = new Float32Array(x.length);
  decodeGradientInto(codec, bytes, out);
  return out;
}

describe('gradient codecs against PyTorch / NumPy', () => {
  it('fp16 rounds as torch .half() does, edges and subnormals included', () => {
    const x = Float32Array.from(fixture.fp16_in);
    expect(Array.from(roundTrip('fp16', x))).toEqual(Array.from(Float32Array.from(fixture.fp16_out)));
    expect(x.map(fp16RoundReference)).toEqual(Float32Array.from(fixture.fp16_out));
  });

  it('bf16 rounds as torch .bfloat16() does', () => {
    const x = Float32Array.from(fixture.bf16_in);
    expect(Array.from(roundTrip('bf16', x))).toEqual(Array.from(Float32Array.from(fixture.bf16_out)));
    expect(x.map(bf16RoundReference)).toEqual(Float32Array.from(fixture.bf16_out));
  });

  it('int8 gives NumPy’s scales and codes (298 values: a tail block, a block of one huge value)', () => {
    const x = Float32Array.from(fixture.int8_in);
    const bytes = new Uint8Array(encodedGradientBytes('int8', x.length));
    encodeGradient('int8', x, bytes);
    const blocks = Math.ceil(x.length / INT8_BLOCK);
    const scales = new Float32Array(bytes.slice(0, 4 * blocks).buffer);
    expect(Array.from(scales)).toEqual(fixture.int8_scales.map(Math.fround));
    expect(Array.from(new Int8Array(bytes.buffer, 4 * blocks))).toEqual(fixture.int8_codes);
    const decoded = roundTrip('int8', x);
    decoded.forEach((v, i) => expect(v).toBe(Math.fround(fixture.int8_codes[i] * scales[Math.floor(i / INT8_BLOCK)])));
  });
});

describe('fast codecs against the plain references', () => {
  const values = Float32Array.from({ length: 5000 }, (_, i) => Math.sin(i * 1.7) * 10 ** ((i % 17) - 12));
  it('fp16 and bf16 agree with the references on 5000 values over 17 decades', () => {
    const inRange = values.filter((v) => Math.abs(v) < 65504);
    expect(roundTrip('fp16', inRange)).toEqual(inRange.map(fp16RoundReference));
    expect(roundTrip('bf16', values)).toEqual(values.map(bf16RoundReference));
  });
  it('int8 agrees with the reference scale and codes, block by block', () => {
    const decoded = roundTrip('int8', values);
    for (let b = 0; b * INT8_BLOCK < values.length; b++) {
      const block = values.subarray(b * INT8_BLOCK, (b + 1) * INT8_BLOCK);
      const scale = int8ScaleReference(block);
      block.forEach((v, j) => expect(decoded[b * INT8_BLOCK + j]).toBe(Math.fround(int8CodeReference(v, scale) * scale) + 0)); // an int8 code has no -0;
    }
  });
});

describe('aligned views and DataView', () => {
  it.each(['none', 'bf16'] as const)('%s gives the same bytes and values from an aligned and an unaligned buffer', (codec) => {
    const x = Float32Array.from({ length: 999 }, (_, i) => (i % 5 === 0 ? -0 : Math.sin(i) * 10 ** ((i % 60) - 30)));
    const size = encodedGradientBytes(codec, x.length);
    const aligned = new Uint8Array(size);
    const unaligned = new Uint8Array(size + 1).subarray(1); // byteOffset 1: the DataView path
    encodeGradient(codec, x, aligned);
    encodeGradient(codec, x, unaligned);
    expect(unaligned).toEqual(aligned);
    const [a, u] = [new Float32Array(x.length), new Float32Array(x.length)];
    decodeGradientInto(codec, aligned, a);
    decodeGradientInto(codec, unaligned, u);
    expect(new Uint32Array(u.buffer)).toEqual(new Uint32Array(a.buffer));
  });

  it.each(['none', 'bf16'] as const)('%s refuses a non-finite value on both paths, naming it', (codec) => {
    const x = Float32Array.from([1, NaN]);
    const size = encodedGradientBytes(codec, 2);
    expect(() => encodeGradient(codec, x, new Uint8Array(size))).toThrow(/value 1 is NaN/);
    expect(() => encodeGradient(codec, x, new Uint8Array(size + 1).subarray(1))).toThrow(/value 1 is NaN/);
  });
});

describe('edge cases', () => {
  it.each(['none', 'fp16', 'bf16', 'int8'] as const)('%s keeps zeros and an empty gradient', (codec) => {
    expect(roundTrip(codec, new Float32Array(0))).toEqual(new Float32Array(0));
    const z = roundTrip(codec, Float32Array.from([0, -0, 0]));
    expect(Array.from(z).map((v) => v === 0)).toEqual([true, true, true]);
  });
  it('int8 sizes: n + 4 per block of 256, ≤ 0.27× of float32 for any n ≥ 256', () => {
    expect([1, 255, 256, 257, 101770].map((n) => encodedGradientBytes('int8', n))).toEqual([5, 259, 260, 265, 101770 + 4 * 398]);
    expect(encodedGradientBytes('int8', 101770) / encodedGradientBytes('none', 101770)).toBeLessThan(0.27);
  });
  it('int8 of a block of denormals keeps them to within a step of the tiny scale', () => {
    const x = Float32Array.from([1e-45, -3e-45, 1.4e-43, 0]);
    const y = roundTrip('int8', x);
    x.forEach((v, i) => expect(Math.abs(y[i] - v)).toBeLessThanOrEqual(2 ** -149));
  });
  it('fp16 refuses a value that would overflow to ∞, naming it', () => {
    const x = Float32Array.from([1, 2, 70000]);
    expect(() => roundTrip('fp16', x)).toThrow(/gradient value 2 is 70000: it overflows fp16/);
    expect(roundTrip('fp16', Float32Array.from([65519]))[0]).toBe(65504); // rounds down, not to ∞
    expect(() => roundTrip('fp16', Float32Array.from([65520]))).toThrow(GradientCodecError);
  });
  it.each(['none', 'fp16', 'bf16', 'int8'] as const)('%s refuses NaN and ∞', (codec) => {
    expect(() => roundTrip(codec, Float32Array.from([0, NaN]))).toThrow(/gradient value 1 is NaN: it is not finite/);
    expect(() => roundTrip(codec, Float32Array.from([-Infinity]))).toThrow(/is -Infinity/);
  });
  it('bf16 refuses what rounds past float32’s max, keeps what does not', () => {
    expect(() => roundTrip('bf16', Float32Array.from([3.4028234e38]))).toThrow(/overflows bf16/);
    expect(roundTrip('bf16', Float32Array.from([3.3e38]))[0]).toBe(bf16RoundReference(Math.fround(3.3e38)));
  });
});

describe('decoding checks what it reads', () => {
  it.each(['none', 'fp16', 'bf16', 'int8'] as const)('%s rejects a wrong length', (codec) => {
    const bytes = new Uint8Array(encodedGradientBytes(codec, 300) + 1);
    expect(() => decodeGradientInto(codec, bytes, new Float32Array(300))).toThrow(/bytes, expected/);
  });
  it('int8 rejects a non-finite or negative scale, the code -128, and a code ≠ 0 under scale 0', () => {
    const x = Float32Array.from({ length: 300 }, (_, i) => i - 150);
    const bytes = new Uint8Array(encodedGradientBytes('int8', 300));
    encodeGradient('int8', x, bytes);
    const into = new Float32Array(300);
    for (const bad of [NaN, Infinity, -1]) {
      const copy = bytes.slice();
      new DataView(copy.buffer).setFloat32(4, bad, true);
      expect(() => decodeGradientInto('int8', copy, into)).toThrow(new RegExp(`block 1 has scale ${bad}`));
    }
    const copy = bytes.slice();
    copy[8 + 5] = 0x80;
    expect(() => decodeGradientInto('int8', copy, into)).toThrow(/value 5 has code -128/);
    const zeros = new Uint8Array(encodedGradientBytes('int8', 3));
    zeros[4 + 2] = 1; // scale 0 (all zeros), code 1
    expect(() => decodeGradientInto('int8', zeros, new Float32Array(3))).toThrow(/value 2 has code 1 in a block of scale 0/);
  });
  it('fp16 and bf16 reject ∞/NaN bit patterns', () => {
    expect(() => decodeGradientInto('fp16', Uint8Array.from([0, 0x7c]), new Float32Array(1))).toThrow(/0x7c00/);
    expect(() => decodeGradientInto('bf16', Uint8Array.from([0xc1, 0xff]), new Float32Array(1))).toThrow(/0xffc1/);
  });
});

describe('error feedback', () => {
  it('sends Q(g + e), keeps e ← (g + e) − D(Q(g + e)), and the sum of what was sent tracks the sum of gradients', () => {
    const n = 700;
    const residual = new Float32Array(n);
    const sentSum = new Float64Array(n);
    const trueSum = new Float64Array(n);
    const out = new Uint8Array(encodedGradientBytes('int8', n));
    const decoded = new Float32Array(n);
    for (let t = 0; t < 50; t++) {
      const g = Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.37 + t) * (i % 256 === 3 ? 100 : 1e-3));
      const before = residual.slice();
      encodeWithErrorFeedback('int8', g, residual, out);
      decodeGradientInto('int8', out, decoded);
      for (let i = 0; i < n; i++) {
        expect(residual[i]).toBe(Math.fround(Math.fround(g[i] + before[i]) - decoded[i]));
        sentSum[i] += decoded[i];
        trueSum[i] += g[i];
      }
    }
    // Without feedback the small values beside the huge one would be lost every step (codes 0); with it, the
    // total sent differs from the total gradient by exactly the last residual (a fraction of one block step).
    for (let i = 0; i < n; i++) expect(Math.abs(sentSum[i] + residual[i] - trueSum[i])).toBeLessThan(1e-4);
    expect(Math.max(...residual.map(Math.abs))).toBeLessThan(0.5);
  });
  it('is a function of (g, e) only: the same inputs give the same bytes and residual', () => {
    const g = Float32Array.from({ length: 513 }, (_, i) => Math.cos(i));
    const e = Float32Array.from({ length: 513 }, (_, i) => 1e-3 * Math.sin(i));
    const [e1, e2] = [e.slice(), e.slice()];
    const [o1, o2] = [new Uint8Array(encodedGradientBytes('fp16', 513)), new Uint8Array(encodedGradientBytes('fp16', 513))];
    encodeWithErrorFeedback('fp16', g, e1, o1);
    encodeWithErrorFeedback('fp16', g, e2, o2);
    expect(o1).toEqual(o2);
    expect(e1).toEqual(e2);
  });
  it('int8, fused, gives the bytes, residual and decoded values of the composed passes (zeros, tails, extremes)', () => {
    const bits = (x: Float32Array) => Array.from(new Uint32Array(x.buffer, x.byteOffset, x.length));
    let seed = 7;
    const random = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32) * 2 - 1;
    for (const n of [1, 255, 256, 257, 700, 1031]) {
      const fused = { e: new Float32Array(n), out: new Uint8Array(encodedGradientBytes('int8', n)), d: new Float32Array(n) };
      const composed = { e: new Float32Array(n), out: new Uint8Array(encodedGradientBytes('int8', n)), d: new Float32Array(n) };
      for (let t = 0; t < 6; t++) {
        const g = Float32Array.from({ length: n }, (_, i) => {
          if (i < 256 && t % 3 === 0) return 0; // a block of zeros (scale 0), the residual kept as it is
          const kind = i % 7;
          return kind === 0 ? -0 : kind === 1 ? random() * 1e-42 : kind === 2 ? random() * 3e38 : random() * 10 ** (t - 4);
        });
        encodeWithErrorFeedback('int8', g, fused.e, fused.out, fused.d);
        encodeWithErrorFeedbackComposed('int8', g, composed.e, composed.out, composed.d);
        expect(fused.out).toEqual(composed.out);
        expect(bits(fused.e)).toEqual(bits(composed.e));
        expect(bits(fused.d)).toEqual(bits(composed.d));
      }
    }
  });

  it('int8, fused, refuses a value that is not finite, naming it', () => {
    const g = Float32Array.from([1, 2, Infinity]);
    const out = new Uint8Array(encodedGradientBytes('int8', 3));
    expect(() => encodeWithErrorFeedback('int8', g, new Float32Array(3), out)).toThrow(/gradient value 2 is Infinity/);
  });

  it('with none the residual stays zero', () => {
    const residual = new Float32Array(3);
    encodeWithErrorFeedback('none', Float32Array.from([1.5, -2, 1e-40]), residual, new Uint8Array(12));
    expect(Array.from(residual)).toEqual([0, 0, 0]);
  });
});
