import { decodeGradientInto, encodedGradientBytes, encodeGradient } from '@gradq/nn';
import { describe, expect, it } from 'vitest';
import { bytesPerStep, CompressionScratch, compressShardGradient, residualBytes, RESIDUAL_CODEC } from './shard-compression.js';

const N = 1000;
const gradient = (seed: number): Float32Array =>
  Float32Array.from({ length: N }, (_, i) => Math.sin(seed * 7.3 + i * 1.7) * (1 + (i % 13)));
const decoded = (codec: 'int8' | 'fp16', bytes: Uint8Array): Float32Array => {
  const out = new Float32Array(N);
  decodeGradientInto(codec, bytes, out);
  return out;
};

describe('compressShardGradient', () => {
  it('int8 with error feedback: what was sent over T steps plus the last residual is the sum of the gradients (to bf16 rounding)', () => {
    const scratch = new CompressionScratch();
    const out = new Uint8Array(encodedGradientBytes('int8', N));
    let residual: Uint8Array | null = null;
    const sent = new Float64Array(N);
    const truth = new Float64Array(N);
    let plain = 0; // the same without error feedback: its error grows with T
    for (let t = 0; t < 50; t++) {
      const g = gradient(t);
      const next = new Uint8Array(residualBytes(N));
      compressShardGradient('int8', g, residual, out, next, scratch);
      residual = next;
      const d = decoded('int8', out);
      const q = new Uint8Array(out.length);
      encodeGradient('int8', g, q);
      const p = decoded('int8', q);
      for (let i = 0; i < N; i++) {
        sent[i] += d[i];
        truth[i] += g[i];
        plain += Math.abs(p[i] - g[i]);
      }
    }
    const e = new Float32Array(N);
    decodeGradientInto(RESIDUAL_CODEC, residual as Uint8Array, e);
    let worst = 0;
    let drift = 0;
    for (let i = 0; i < N; i++) {
      worst = Math.max(worst, Math.abs(sent[i] + e[i] - truth[i]) / (1 + Math.abs(truth[i])));
      drift += Math.abs(sent[i] - truth[i]);
    }
    expect(worst).toBeLessThan(0.02); // bf16 storage of the residual: 2^-9 of it each step
    expect(drift).toBeLessThan(plain / 10); // error feedback keeps the sum close; plain rounding does not
  });

  it('is a function of the gradient and the stored residual alone: the same inputs give the same bytes', () => {
    const g = gradient(3);
    const r = new Uint8Array(residualBytes(N));
    compressShardGradient('int8', gradient(2), null, new Uint8Array(encodedGradientBytes('int8', N)), r, new CompressionScratch());
    const run = () => {
      const out = new Uint8Array(encodedGradientBytes('int8', N));
      const next = new Uint8Array(residualBytes(N));
      compressShardGradient('int8', g, r, out, next, new CompressionScratch());
      return [Buffer.from(out).toString('hex'), Buffer.from(next).toString('hex')];
    };
    expect(run()).toEqual(run());
  });

  it('fp16 has no residual: it is the plain encoding', () => {
    const g = gradient(1);
    const out = new Uint8Array(encodedGradientBytes('fp16', N));
    compressShardGradient('fp16', g, null, out, null, new CompressionScratch());
    const plain = new Uint8Array(out.length);
    encodeGradient('fp16', g, plain);
    expect(Buffer.from(out).equals(Buffer.from(plain))).toBe(true);
  });

  it('reports bytes per step: int8 gradients 0.254× of none, residuals 2 bytes a value', () => {
    const none = bytesPerStep('none', 101_770, 4);
    const int8 = bytesPerStep('int8', 101_770, 4);
    expect(none).toEqual({ params_down: 4 * 4 * 101_770, gradients_up: 4 * 4 * 101_770, residuals: 0 });
    expect(int8.gradients_up).toBe(4 * (101_770 + 4 * Math.ceil(101_770 / 256)));
    expect(int8.gradients_up / none.gradients_up).toBeLessThan(0.255);
    expect(int8.residuals).toBe(4 * 2 * 101_770);
  });
});
