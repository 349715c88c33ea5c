import { checkConv2d, conv2dOutputSize, conv2dPad, type Conv2dKernel } from './conv2d.js';

/**
 * The algorithmic reference: the definition in conv2d.ts as plain loops, each output one sum in double precision
 * (rounded to float32 once, on store), padding by skipping the taps that fall outside the input.
 */
export const conv2dReference: Conv2dKernel = {
  // out (batch, outC, outH, outW) = conv(x (batch, inC, height, width), w (outC, inC, k, k)) + b (outC)
  forward(out, x, w, b, shape) {
    checkConv2d(shape, { out, x, w, b });
    const { batch, inC, height, width, outC, k } = shape;
    const pad = conv2dPad(shape);
    const { outH, outW } = conv2dOutputSize(shape);
    for (let n = 0; n < batch; n++) {
      for (let o = 0; o < outC; o++) {
        for (let i = 0; i < outH; i++) {
          for (let j = 0; j < outW; j++) {
            let sum = 0;
            for (let c = 0; c < inC; c++) {
              for (let di = 0; di < k; di++) {
                const y = i + di - pad;
                if (y < 0 || y >= height) continue;
                for (let dj = 0; dj < k; dj++) {
                  const xx = j + dj - pad;
                  if (xx < 0 || xx >= width) continue;
                  sum += w[((o * inC + c) * k + di) * k + dj] * x[((n * inC + c) * height + y) * width + xx];
                }
              }
            }
            out[((n * outC + o) * outH + i) * outW + j] = sum + b[o];
          }
        }
      }
    }
  },

  // dw (outC, inC, k, k) +=, db (outC) +=, dx (batch, inC, height, width) = from dout (batch, outC, outH, outW)
  backward(dx, dw, db, dout, x, w, shape) {
    checkConv2d(shape, { dw, db, dout, x, w, ...(dx ? { dx } : {}) });
    const { batch, inC, height, width, outC, k } = shape;
    const pad = conv2dPad(shape);
    const { outH, outW } = conv2dOutputSize(shape);
    const at = (n: number, o: number, i: number, j: number) => dout[((n * outC + o) * outH + i) * outW + j];
    for (let o = 0; o < outC; o++) {
      let sum = 0;
      for (let n = 0; n < batch; n++) for (let i = 0; i < outH; i++) for (let j = 0; j < outW; j++) sum += at(n, o, i, j);
      db[o] += sum;
      for (let c = 0; c < inC; c++) {
        for (let di = 0; di < k; di++) {
          for (let dj = 0; dj < k; dj++) {
            // Output rows and columns whose tap (di, dj) lands inside the input.
            const i0 = Math.max(0, pad - di);
            const i1 = Math.min(outH, height + pad - di);
            const j0 = Math.max(0, pad - dj);
            const j1 = Math.min(outW, width + pad - dj);
            let g = 0;
            for (let n = 0; n < batch; n++) {
              for (let i = i0; i < i1; i++) {
                const row = ((n * inC + c) * height + i + di - pad) * width + dj - pad;
                for (let j = j0; j < j1; j++) g += at(n, o, i, j) * x[row + j];
              }
            }
            dw[((o * inC + c) * k + di) * k + dj] += g;
          }
        }
      }
    }
    if (dx === null) return;
    for (let n = 0; n < batch; n++) {
      for (let c = 0; c < inC; c++) {
        for (let y = 0; y < height; y++) {
          for (let xx = 0; xx < width; xx++) {
            let sum = 0;
            for (let o = 0; o < outC; o++) {
              for (let di = 0; di < k; di++) {
                const i = y - di + pad;
                if (i < 0 || i >= outH) continue;
                for (let dj = 0; dj < k; dj++) {
                  const j = xx - dj + pad;
                  if (j < 0 || j >= outW) continue;
                  sum += at(n, o, i, j) * w[((o * inC + c) * k + di) * k + dj];
                }
              }
            }
            dx[((n * inC + c) * height + y) * width + xx] = sum;
          }
        }
      }
    }
  },
};
