/** The reference sum: sum[i] += g[i] over the n = sum.length values (in double, rounded to float32 on store). */
export function addIntoReference(sum: Float32Array, g: Float32Array): void {
  if (g.length !== sum.length) throw new RangeError(`addInto: sum holds ${sum.length} values, g ${g.length}`);
  for (let i = 0; i < sum.length; i++) sum[i] += g[i];
}

/** The reference check: index of the first NaN or ±Infinity, or -1. */
export function firstNonFiniteReference(values: Float32Array): number {
  for (let i = 0; i < values.length; i++) if (!Number.isFinite(values[i])) return i;
  return -1;
}

/** The reference pixel scaling: into[i] = bytes[i] / 255 (in double, rounded to float32 on store). */
export function unitFloatsReference(bytes: Uint8Array, into: Float32Array): void {
  if (bytes.length !== into.length) throw new RangeError(`unitFloats: ${bytes.length} bytes for ${into.length} floats`);
  for (let i = 0; i < bytes.length; i++) into[i] = bytes[i] / 255;
}
