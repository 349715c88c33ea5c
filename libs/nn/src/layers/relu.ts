/** ReLU forward, in place allowed: out[i] = max(x[i], 0) over n values. NaN stays NaN. */
export function reluForward(out: Float32Array, x: Float32Array, n: number): void {
  for (let i = 0; i < n; i++) {
    const v = x[i];
    out[i] = v < 0 ? 0 : v;
  }
}

/** ReLU backward from its output, in place allowed: dx[i] = out[i] > 0 ? dout[i] : 0 over n values. */
export function reluBackward(dx: Float32Array, dout: Float32Array, out: Float32Array, n: number): void {
  for (let i = 0; i < n; i++) dx[i] = out[i] > 0 ? dout[i] : 0;
}
