/**
 * 2-D convolution (cross-correlation, as PyTorch's Conv2d) over NCHW float32 tensors, stride 1, odd or even square
 * kernels: the shape every conv2d kernel takes and the checks they all run before trusting it.
 *
 *   x (batch, inC, height, width), w (outC, inC, k, k), b (outC)  →  out (batch, outC, outH, outW)
 *   out[n, o, i, j] = b[o] + Σ_{c, di, dj} w[o, c, di, dj] · x[n, c, i + di - pad, j + dj - pad]   (x = 0 outside)
 *
 * Padding 'valid' (pad 0: outH = height - k + 1) or 'same' (odd k, pad (k - 1) / 2: outH = height).
 */
export type Conv2dPadding = 'valid' | 'same';

export interface Conv2dShape {
  readonly batch: number;
  readonly inC: number;
  readonly height: number;
  readonly width: number;
  readonly outC: number;
  /** Kernel size: k×k. */
  readonly k: number;
  readonly padding: Conv2dPadding;
}

/** A forward/backward pair over one Conv2dShape. */
export interface Conv2dKernel {
  /** out (batch, outC, outH, outW) = conv(x (batch, inC, height, width), w (outC, inC, k, k)) + b (outC). */
  forward(out: Float32Array, x: Float32Array, w: Float32Array, b: Float32Array, shape: Conv2dShape): void;
  /**
   * dw (outC, inC, k, k) += Σ dout ⊗ x patches, db (outC) += Σ dout, dx (batch, inC, height, width) = the
   * gradient of x (overwritten; null skips it, as for the input layer), from dout (batch, outC, outH, outW).
   */
  backward(
    dx: Float32Array | null,
    dw: Float32Array,
    db: Float32Array,
    dout: Float32Array,
    x: Float32Array,
    w: Float32Array,
    shape: Conv2dShape,
  ): void;
}

/** Zeros added on each side of the input: 0 for 'valid', (k - 1) / 2 for 'same'. */
export function conv2dPad(shape: Conv2dShape): number {
  return shape.padding === 'same' ? (shape.k - 1) / 2 : 0;
}

/** The output's spatial size. */
export function conv2dOutputSize(shape: Conv2dShape): { outH: number; outW: number } {
  const pad = conv2dPad(shape);
  return { outH: shape.height + 2 * pad - shape.k + 1, outW: shape.width + 2 * pad - shape.k + 1 };
}

/** Checks the shape and that each given array holds at least what it needs; the kernels trust both. */
export function checkConv2d(
  shape: Conv2dShape,
  arrays: Partial<Record<'x' | 'w' | 'b' | 'out' | 'dx' | 'dw' | 'db' | 'dout', Float32Array>>,
): void {
  const { batch, inC, height, width, outC, k, padding } = shape;
  for (const [name, v] of [
    ['batch', batch],
    ['inC', inC],
    ['height', height],
    ['width', width],
    ['outC', outC],
    ['k', k],
  ] as const) {
    if (!Number.isInteger(v) || v < (name === 'batch' ? 0 : 1)) {
      throw new RangeError(`conv2d: ${name} must be a whole number >= ${name === 'batch' ? 0 : 1}, got ${v}`);
    }
  }
  if (padding !== 'valid' && padding !== 'same') {
    throw new RangeError(`conv2d: padding must be 'valid' or 'same', got ${JSON.stringify(padding)}`);
  }
  if (padding === 'same' && k % 2 === 0) throw new RangeError(`conv2d: padding 'same' needs an odd k, got k = ${k}`);
  if (padding === 'valid' && (k > height || k > width)) {
    throw new RangeError(
      `conv2d: a ${k}×${k} kernel does not fit a ${height}×${width} input with padding 'valid'; use padding 'same' or a smaller k`,
    );
  }
  const { outH, outW } = conv2dOutputSize(shape);
  const sizes = {
    x: [batch * inC * height * width, `${batch}×${inC}×${height}×${width}`],
    dx: [batch * inC * height * width, `${batch}×${inC}×${height}×${width}`],
    w: [outC * inC * k * k, `${outC}×${inC}×${k}×${k}`],
    dw: [outC * inC * k * k, `${outC}×${inC}×${k}×${k}`],
    b: [outC, `${outC}`],
    db: [outC, `${outC}`],
    out: [batch * outC * outH * outW, `${batch}×${outC}×${outH}×${outW}`],
    dout: [batch * outC * outH * outW, `${batch}×${outC}×${outH}×${outW}`],
  } as const;
  for (const [name, array] of Object.entries(arrays)) {
    const [need, dims] = sizes[name as keyof typeof sizes];
    if (array.length < need)
      throw new RangeError(`conv2d: ${name} holds ${array.length} values, needs ${dims === String(need) ? dims : `${dims} = ${need}`}`);
  }
}
