import { describe, expect, it } from 'vitest';
import type { GrayImage } from './gray-image.js';
import { inkBox, SPECK_SHARE } from './ink-box.js';

/** A black width × height image with `value` rectangles [x0, y0, x1, y1, value]. */
function drawing(width: number, height: number, rects: number[][]): GrayImage {
  const pixels = new Float32Array(width * height);
  for (const [x0, y0, x1, y1, value] of rects) for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) pixels[y * width + x] = value;
  return { width, height, pixels };
}

/** The image enlarged k times, each pixel a k×k block. */
function enlarged(image: GrayImage, k: number): GrayImage {
  const width = image.width * k;
  const pixels = Float32Array.from(
    { length: width * image.height * k },
    (_, i) => image.pixels[Math.floor(i / width / k) * image.width + Math.floor((i % width) / k)],
  );
  return { width, height: image.height * k, pixels };
}

describe('inkBox', () => {
  // A 10×10 full-ink square (100 units of ink).
  const square = [20, 10, 30, 20, 1];

  it('holds every pixel above the threshold of a single blob, and nothing fainter', () => {
    expect(inkBox(drawing(60, 40, [square, [19, 10, 20, 20, 0.04]]))).toEqual({ x0: 20, y0: 10, x1: 30, y1: 20 });
    expect(inkBox(drawing(60, 40, [square, [19, 10, 20, 20, 0.06]]))).toEqual({ x0: 19, y0: 10, x1: 30, y1: 20 });
  });

  it('leaves out a speck with less than SPECK_SHARE of the ink, keeps a part with more, at any size', () => {
    const speck = [50, 35, 51, 36, (SPECK_SHARE * 100) / (1 - SPECK_SHARE) - 0.01]; // just under 1% of the total
    const part = [2, 2, 4, 3, 1]; // 2 units, about 2%
    for (const k of [1, 3]) {
      expect(inkBox(enlarged(drawing(60, 40, [square, speck]), k))).toEqual({ x0: 20 * k, y0: 10 * k, x1: 30 * k, y1: 20 * k });
      expect(inkBox(enlarged(drawing(60, 40, [square, speck, part]), k))).toEqual({ x0: 2 * k, y0: 2 * k, x1: 30 * k, y1: 20 * k });
    }
  });

  it('counts pixels that touch at a corner as one blob', () => {
    // A diagonal line of 30 pixels beside a 20×20 square: each pixel alone would be a speck (1/430 of the ink), the
    // line is 7% of it.
    const image = drawing(80, 80, [[60, 60, 80, 80, 1]]);
    for (let i = 0; i < 30; i++) image.pixels[i * 80 + i] = 1;
    expect(inkBox(image)).toEqual({ x0: 0, y0: 0, x1: 80, y1: 80 });
  });

  it('keeps every blob when none holds SPECK_SHARE of the ink (a stipple), and finds nothing in an empty image', () => {
    const image = drawing(40, 40, []);
    for (let y = 5; y < 35; y += 3) for (let x = 5; x < 35; x += 3) image.pixels[y * 40 + x] = 1; // 100 dots
    image.pixels[0] = 0.5; // one lighter dot: 0.5% of the ink
    expect(inkBox(image)).toEqual({ x0: 0, y0: 0, x1: 33, y1: 33 });
    expect(inkBox(drawing(10, 10, [[0, 0, 10, 10, 0.04]]))).toBeUndefined();
  });
});
