/**
 * 2×2 max-pooling with stride 2 over NCHW float32 tensors, as PyTorch's MaxPool2d(2): the shape every maxpool2d
 * kernel takes and the checks they all run before trusting it.
 *
 *   x (batch, channels, height, width)  →  out (batch, channels, ⌊height / 2⌋, ⌊width / 2⌋)
 *   out[n, c, i, j] = max of x[n, c, 2i + di, 2j + dj] for di, dj in {0, 1}   (an odd last row or column is unused)
 *
 * argmax[n, c, i, j] records which input won, as PyTorch's return_indices: its index y·width + x within the
 * (height, width) plane. The first maximum in the order (0,0), (0,1), (1,0), (1,1) wins, except that NaN always
 * wins (the last NaN, as PyTorch's `val > max || isnan(val)`), so NaN propagates.
 */
export interface Pool2dShape {
  readonly batch: number;
  readonly channels: number;
  readonly height: number;
  readonly width: number;
}

/** A forward/backward pair over one Pool2dShape. */
export interface MaxPool2dKernel {
  /** out (batch, channels, outH, outW) = the maxima of x (batch, channels, height, width); argmax (same as out) = where. */
  forward(out: Float32Array, argmax: Int32Array, x: Float32Array, shape: Pool2dShape): void;
  /**
   * dx (batch, channels, height, width) = dout (batch, channels, outH, outW) at the inputs that won, 0 elsewhere
   * (overwritten), from the argmax that forward wrote for this shape.
   */
  backward(dx: Float32Array, dout: Float32Array, argmax: Int32Array, shape: Pool2dShape): void;
}

/** The output's spatial size: ⌊height / 2⌋ × ⌊width / 2⌋. */
export function maxPool2dOutputSize(shape: Pool2dShape): { outH: number; outW: number } {
  return { outH: Math.floor(shape.height / 2), outW: Math.floor(shape.width / 2) };
}

/**
 * Checks the shape and that each array holds at least what it needs (the input-sized one is x or dx, the
 * output-sized one out or dout, named in the errors); the kernels trust both.
 */
export function checkMaxPool2d(
  shape: Pool2dShape,
  inputName: 'x' | 'dx',
  inputs: number,
  outputName: 'out' | 'dout',
  outputs: number,
  indices: number,
): void {
  const { batch, channels, height, width } = shape;
  for (const [name, v] of [
    ['batch', batch],
    ['channels', channels],
    ['height', height],
    ['width', width],
  ] as const) {
    const least = name === 'batch' ? 0 : 1;
    if (!Number.isInteger(v) || v < least) throw new RangeError(`maxpool2d: ${name} must be a whole number >= ${least}, got ${v}`);
  }
  const { outH, outW } = maxPool2dOutputSize(shape);
  const planes = batch * channels;
  const needs = [
    [inputName, inputs, planes * height * width, `${batch}×${channels}×${height}×${width}`],
    [outputName, outputs, planes * outH * outW, `${batch}×${channels}×${outH}×${outW}`],
    ['argmax', indices, planes * outH * outW, `${batch}×${channels}×${outH}×${outW}`],
  ] as const;
  for (const [name, have, need, dims] of needs) {
    if (have < need) throw new RangeError(`maxpool2d: ${name} holds ${have} values, needs ${dims} = ${need}`);
  }
}
