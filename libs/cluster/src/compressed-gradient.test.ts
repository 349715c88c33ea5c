import { encodedGradientBytes, encodeGradient, type GradientCodec } from '@gradq/nn';
import { describe, expect, it } from 'vitest';
import { checkGradientCodec, readCompressedGradientInto } from './compressed-gradient.js';
import { InvalidMessageError } from './invalid-message-error.js';

const values = Float32Array.from({ length: 600 }, (_, i) => Math.sin(i) * 1e-2);
function encoded(codec: GradientCodec): Uint8Array {
  const bytes = new Uint8Array(encodedGradientBytes(codec, values.length));
  if (codec === 'none') new Uint8Array(bytes.buffer).set(new Uint8Array(values.buffer));
  else encodeGradient(codec, values, bytes);
  return bytes;
}

describe('readCompressedGradientInto', () => {
  it.each(['none', 'fp16', 'bf16', 'int8'] as const)('reads a %s gradient within its rounding', (codec) => {
    const into = new Float32Array(values.length);
    readCompressedGradientInto(codec, codec, encoded(codec), into, 'step 3 shard 1');
    const tolerance = { none: 0, fp16: 1e-5, bf16: 1e-4, int8: 1e-4 }[codec];
    into.forEach((v, i) => expect(Math.abs(v - values[i])).toBeLessThanOrEqual(tolerance));
  });
  it('rejects a bad codec tag, naming it', () => {
    expect(() => readCompressedGradientInto('int4', 'int8', encoded('int8'), new Float32Array(600), 'step 3 shard 1')).toThrow(
      /step 3 shard 1: gradient codec "int4", expected one of none, fp16, bf16, int8/,
    );
    expect(() => checkGradientCodec(7, 'header')).toThrow(InvalidMessageError);
  });
  it('rejects a gradient tagged with another codec than the run’s', () => {
    expect(() => readCompressedGradientInto('fp16', 'int8', encoded('fp16'), new Float32Array(600), 's')).toThrow(
      /encoded as fp16, this run compresses with int8/,
    );
  });
  it('rejects a wrong length and a non-finite scale as InvalidMessageErrors', () => {
    const short = encoded('int8').subarray(1);
    expect(() => readCompressedGradientInto('int8', 'int8', short, new Float32Array(600), 's')).toThrow(InvalidMessageError);
    const bad = encoded('int8');
    new DataView(bad.buffer).setFloat32(0, NaN, true);
    expect(() => readCompressedGradientInto('int8', 'int8', bad, new Float32Array(600), 's')).toThrow(
      /s: int8 gradient block 0 has scale NaN/,
    );
  });
});
