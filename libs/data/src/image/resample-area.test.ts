import { describe, expect, it } from 'vitest';
import type { GrayImage } from './gray-image.js';
import { resampleArea, type SamplingGrid } from './resample-area.js';

function randomImage(width: number, height: number, seed: number): GrayImage {
  let s = seed;
  const pixels = Float32Array.from({ length: width * height }, () => (s = (s * 16807) % 2147483647) / 2147483647);
  return { width, height, pixels };
}

/** The definition, not separated: each grid pixel's mean over its square, summing pixel-by-pixel rectangle overlaps. */
function resampleReference(image: GrayImage, grid: SamplingGrid): number[] {
  const out: number[] = [];
  const side = 1 / grid.scale;
  for (let Y = 0; Y < grid.height; Y++) {
    for (let X = 0; X < grid.width; X++) {
      const [x0, y0] = [grid.x + X * side, grid.y + Y * side];
      let sum = 0;
      for (let j = 0; j < image.height; j++) {
        for (let i = 0; i < image.width; i++) {
          const ox = Math.max(0, Math.min(i + 1, x0 + side) - Math.max(i, x0));
          const oy = Math.max(0, Math.min(j + 1, y0 + side) - Math.max(j, y0));
          sum += ox * oy * image.pixels[j * image.width + i];
        }
      }
      out.push(sum / (side * side));
    }
  }
  return out;
}

describe('resampleArea', () => {
  it('copies at scale 1 on whole pixels, with zeros outside the image', () => {
    const image = randomImage(7, 5, 1);
    const out = resampleArea(image, { x: 2, y: -1, scale: 1, width: 6, height: 4 });
    for (let y = 0; y < 4; y++) {
      for (let x = 0; x < 6; x++) {
        const [sx, sy] = [x + 2, y - 1];
        const expected = sx < 7 && sy >= 0 ? image.pixels[sy * 7 + sx] : 0;
        expect(out.pixels[y * 6 + x]).toBe(expected);
      }
    }
  });

  it.each([
    ['shrinks by 3/7 from a fractional corner', { x: -0.4, y: 1.3, scale: 3 / 7, width: 9, height: 6 }],
    ['shrinks by 1/5 (the 28 → 140 → 28 round trip)', { x: 0, y: 0, scale: 0.2, width: 8, height: 6 }],
    ['enlarges by 2.5', { x: 3.2, y: 4.9, scale: 2.5, width: 30, height: 24 }],
    ['covers part of the image at 0.9', { x: 5.5, y: 2.25, scale: 0.9, width: 11, height: 13 }],
  ])('%s: each pixel is the mean over its square', (_name, grid) => {
    const image = randomImage(40, 30, 7);
    const out = resampleArea(image, grid);
    expect([out.width, out.height]).toEqual([grid.width, grid.height]);
    const expected = resampleReference(image, grid);
    for (let i = 0; i < expected.length; i++) expect(out.pixels[i]).toBeCloseTo(expected[i], 5);
  });

  it('keeps the total ink (sum / scale²) when the grid covers the image', () => {
    const image = randomImage(33, 21, 3);
    const out = resampleArea(image, { x: -1, y: -2, scale: 0.3, width: 12, height: 9 });
    const sum = (p: Float32Array) => p.reduce((s, v) => s + v, 0);
    expect(sum(out.pixels) / 0.3 ** 2).toBeCloseTo(sum(image.pixels), 2);
  });

  it('refuses a grid without pixels or with a scale <= 0', () => {
    const image = randomImage(4, 4, 1);
    expect(() => resampleArea(image, { x: 0, y: 0, scale: 0, width: 2, height: 2 })).toThrow(RangeError);
    expect(() => resampleArea(image, { x: 0, y: 0, scale: 1, width: 0, height: 2 })).toThrow(RangeError);
  });
});
