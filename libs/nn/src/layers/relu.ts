import { reluBackwardWasm, reluForwardWasm } from '../kernels/vec-wasm.js';
import { batchBuffer, EMPTY, shapeSize, type Layer, type Shape } from './layer.js';

/** From this many values on, ReLU runs in WebAssembly SIMD (copies included, ~6× faster than the loops below). */
const WASM_FROM = 256;

/**
 * ReLU forward, in place allowed: out[i] = x[i] < 0 ? 0 : x[i] over n values (NaN and -0 stay as they are). The
 * WebAssembly SIMD pass (wasm/vec.ts) from WASM_FROM values on, else reluForwardReference: the same bits.
 */
export function reluForward(out: Float32Array, x: Float32Array, n: number): void {
  if (n < WASM_FROM) reluForwardReference(out, x, n);
  else reluForwardWasm(out, x, n);
}

/**
 * ReLU backward, in place allowed: dx[i] = mask[i] > 0 ? dout[i] : 0 over n values, where mask is the ReLU's output
 * or its input (the same mask). WebAssembly from WASM_FROM values on, else reluBackwardReference: the same bits.
 */
export function reluBackward(dx: Float32Array, dout: Float32Array, mask: Float32Array, n: number): void {
  if (n < WASM_FROM) reluBackwardReference(dx, dout, mask, n);
  else reluBackwardWasm(dx, dout, mask, n);
}

/**
 * The reference ReLU forward (the loop). Without a branch: the bits of x[i] are kept or cleared with the mask
 * -!(x[i] < 0) (all ones or 0), which gives the same bits as the comparison; a branch on the sign of hidden
 * pre-activations, which is as likely one way as the other, mispredicts half the time.
 */
export function reluForwardReference(out: Float32Array, x: Float32Array, n: number): void {
  const xBits = new Int32Array(x.buffer, x.byteOffset, n);
  const outBits = new Int32Array(out.buffer, out.byteOffset, n);
  for (let i = 0; i < n; i++) outBits[i] = xBits[i] & -!(x[i] < 0);
}

/** The reference ReLU backward (the loop). Without a branch, as reluForwardReference: dout[i] & -(mask[i] > 0). */
export function reluBackwardReference(dx: Float32Array, dout: Float32Array, mask: Float32Array, n: number): void {
  const doutBits = new Int32Array(dout.buffer, dout.byteOffset, n);
  const dxBits = new Int32Array(dx.buffer, dx.byteOffset, n);
  for (let i = 0; i < n; i++) dxBits[i] = doutBits[i] & -(mask[i] > 0);
}

/**
 * ReLU as a Layer: any shape to the same shape, no parameters. In place (inPlace) it overwrites x with y and dy with
 * dx, as the MLP does on each hidden dense output; otherwise it writes into its own buffers. Backward masks with x,
 * which is the same mask either way: x > 0 exactly where max(x, 0) > 0 (NaN and -0 included).
 */
export class ReluLayer implements Layer {
  readonly outputShape: Shape;
  readonly parameterCount = 0;
  private readonly size: number;
  private y = EMPTY;
  private dx = EMPTY;

  constructor(
    readonly inputShape: Shape,
    readonly inPlace: boolean,
  ) {
    this.outputShape = inputShape;
    this.size = shapeSize(inputShape);
  }

  bind(): void {
    // no parameters
  }

  initialize(): void {
    // no parameters: draws nothing
  }

  // x (batch, ...shape) → y (batch, ...shape)
  forward(x: Float32Array, batch: number): Float32Array {
    const n = batch * this.size;
    const y = this.inPlace ? x : (this.y = batchBuffer(this.y, n));
    reluForward(y, x, n);
    return y;
  }

  // dy (batch, ...shape), x → dx (batch, ...shape) or null
  backward(x: Float32Array, dy: Float32Array, batch: number, inputGradient: boolean): Float32Array | null {
    if (!inputGradient) return null;
    const n = batch * this.size;
    const dx = this.inPlace ? dy : (this.dx = batchBuffer(this.dx, n));
    reluBackward(dx, dy, x, n);
    return dx;
  }
}
