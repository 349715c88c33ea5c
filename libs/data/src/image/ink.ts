import { DataError } from '../data-error.js';
import type { GrayImage } from './gray-image.js';

/** An image as ink, light on dark like the datasets: 0 background, 1 full ink. */
export interface Ink {
  image: GrayImage;
  /** Whether the image was dark on light and so was inverted. */
  inverted: boolean;
}

/**
 * The ink of an image. Its border is a frame max(1, ⌊min(width, height) / 28⌋) pixels wide (one pixel of a 28×28
 * sample); the border's median brightness is the background. When the background is lighter than the inside (the
 * rest of the image) on average, the image is dark on light and is inverted (v → 1 − v, b → 1 − b). Then
 * v → max(0, (v − b) / (1 − b)) takes the background b to 0 and keeps full ink at 1: the identity for a black
 * background. DataError (naming `source`) for an image under 3×3 pixels.
 */
export function extractInk(image: GrayImage, source: string): Ink {
  const { width, height, pixels } = image;
  if (width < 3 || height < 3) throw new DataError(`${source}: ${width}×${height} pixels is too small (at least 3×3)`);
  const band = Math.max(1, Math.floor(Math.min(width, height) / 28));
  const inBorder = (x: number, y: number) => x < band || y < band || x >= width - band || y >= height - band;
  const border = new Float32Array(width * height - (width - 2 * band) * (height - 2 * band));
  let n = 0;
  let insideSum = 0;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const v = pixels[y * width + x];
      if (inBorder(x, y)) border[n++] = v;
      else insideSum += v;
    }
  }
  border.sort();
  const median = border[border.length >> 1];
  const inverted = median > insideSum / (width * height - border.length);
  const background = inverted ? 1 - median : median;
  const ink = new Float32Array(width * height);
  // A background of full ink leaves no ink (all 0).
  if (background < 1) {
    const gain = 1 / (1 - background);
    for (let i = 0; i < ink.length; i++) {
      const v = ((inverted ? 1 - pixels[i] : pixels[i]) - background) * gain;
      ink[i] = v > 0 ? v : 0;
    }
  }
  return { image: { width, height, pixels: ink }, inverted };
}
