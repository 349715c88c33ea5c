import type { GrayImage } from './gray-image.js';

/** A grid laid over an image: its pixel (X, Y) covers [x + X/scale, x + (X+1)/scale) × [y + Y/scale, y + (Y+1)/scale). */
export interface SamplingGrid {
  /** Where the grid's top-left corner falls on the image, in (fractional) image pixels. */
  x: number;
  y: number;
  /** Grid pixels per image pixel (> 0): below 1 shrinks, above 1 enlarges. */
  scale: number;
  width: number;
  height: number;
}

/**
 * Area averaging: each grid pixel gets the mean of the image over the square it covers, the image being constant
 * over each of its pixels and 0 outside its bounds. At scale 1 on whole-pixel positions a copy, anti-aliased when
 * shrinking, blocky when enlarging. Separable: the image's rows first, then its columns.
 */
export function resampleArea(image: GrayImage, grid: SamplingGrid): GrayImage {
  const { scale, width, height } = grid;
  if (!(scale > 0 && Number.isFinite(scale)) || !Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new RangeError(`resampleArea: grid ${JSON.stringify(grid)} needs a scale > 0 and a whole width and height >= 1`);
  }
  const xs = axisWeights(image.width, grid.x, scale, width);
  const ys = axisWeights(image.height, grid.y, scale, height);
  // The image rows the grid touches, each reduced to the grid's columns: (rows, width).
  const r0 = Math.min(...ys.map((w) => w.first));
  const r1 = Math.max(...ys.map((w) => w.first + w.weights.length));
  const rows = new Float64Array(Math.max(0, r1 - r0) * width);
  for (let j = r0; j < r1; j++) {
    const src = j * image.width;
    for (let x = 0; x < width; x++) {
      const { first, weights } = xs[x];
      let sum = 0;
      for (let k = 0; k < weights.length; k++) sum += weights[k] * image.pixels[src + first + k];
      rows[(j - r0) * width + x] = sum;
    }
  }
  const pixels = new Float32Array(width * height);
  for (let y = 0; y < height; y++) {
    const { first, weights } = ys[y];
    for (let x = 0; x < width; x++) {
      let sum = 0;
      for (let k = 0; k < weights.length; k++) sum += weights[k] * rows[(first + k - r0) * width + x];
      pixels[y * width + x] = sum;
    }
  }
  return { width, height, pixels };
}

/**
 * Along one axis of `length` image pixels, for each of `count` grid pixels starting at `origin`: the first image
 * pixel it covers and the weights of the image pixels it covers (overlap × scale: 1 in all for a pixel inside).
 */
function axisWeights(length: number, origin: number, scale: number, count: number): { first: number; weights: Float64Array }[] {
  return Array.from({ length: count }, (_, i) => {
    const lo = Math.max(origin + i / scale, 0);
    const hi = Math.min(origin + (i + 1) / scale, length);
    if (!(hi > lo)) return { first: 0, weights: new Float64Array(0) };
    const first = Math.floor(lo);
    const weights = new Float64Array(Math.ceil(hi) - first);
    for (let k = 0; k < weights.length; k++) weights[k] = (Math.min(hi, first + k + 1) - Math.max(lo, first + k)) * scale;
    return { first, weights };
  });
}
