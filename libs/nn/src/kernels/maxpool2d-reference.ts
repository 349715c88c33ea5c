import { checkMaxPool2d, maxPool2dOutputSize, type MaxPool2dKernel } from './maxpool2d.js';

/** The algorithmic reference: the definition in maxpool2d.ts as plain loops, PyTorch's comparison rule. */
export const maxPool2dReference: MaxPool2dKernel = {
  // out, argmax (batch, channels, ⌊height/2⌋, ⌊width/2⌋) = max, where of x (batch, channels, height, width)
  forward(out, argmax, x, shape) {
    checkMaxPool2d(shape, 'x', x.length, 'out', out.length, argmax.length);
    const { batch, channels, height, width } = shape;
    const { outH, outW } = maxPool2dOutputSize(shape);
    for (let plane = 0; plane < batch * channels; plane++) {
      const xp = plane * height * width;
      const op = plane * outH * outW;
      for (let i = 0; i < outH; i++) {
        for (let j = 0; j < outW; j++) {
          let max = Number.NEGATIVE_INFINITY;
          let at = 2 * i * width + 2 * j;
          for (let di = 0; di < 2; di++) {
            for (let dj = 0; dj < 2; dj++) {
              const index = (2 * i + di) * width + 2 * j + dj;
              const v = x[xp + index];
              if (v > max || Number.isNaN(v)) {
                max = v;
                at = index;
              }
            }
          }
          out[op + i * outW + j] = max;
          argmax[op + i * outW + j] = at;
        }
      }
    }
  },

  // dx (batch, channels, height, width) = dout (batch, channels, ⌊height/2⌋, ⌊width/2⌋) scattered to argmax
  // (windows do not overlap: each input gets at most one value)
  backward(dx, dout, argmax, shape) {
    checkMaxPool2d(shape, 'dx', dx.length, 'dout', dout.length, argmax.length);
    const { batch, channels, height, width } = shape;
    const { outH, outW } = maxPool2dOutputSize(shape);
    dx.fill(0, 0, batch * channels * height * width);
    for (let plane = 0; plane < batch * channels; plane++) {
      const xp = plane * height * width;
      const op = plane * outH * outW;
      for (let o = 0; o < outH * outW; o++) dx[xp + argmax[op + o]] = dout[op + o];
    }
  },
};
