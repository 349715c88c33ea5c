import { describe, expect, it } from 'vitest';
import { DataError } from '../data-error.js';
import type { GrayImage } from './gray-image.js';
import { extractInk } from './ink.js';

/** A width × height image of `background` with a `value` rectangle at [x0, x1) × [y0, y1). */
function rectangle(width: number, height: number, background: number, value: number, [x0, y0, x1, y1]: number[]): GrayImage {
  const pixels = new Float32Array(width * height).fill(background);
  for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) pixels[y * width + x] = value;
  return { width, height, pixels };
}

const at = (image: GrayImage, x: number, y: number) => image.pixels[y * image.width + x];

describe('extractInk', () => {
  it('keeps a light-on-dark image with a black background as it is', () => {
    const image = rectangle(28, 28, 0, 0.75, [10, 5, 18, 22]);
    const { image: ink, inverted } = extractInk(image, 'digit.png');
    expect(inverted).toBe(false);
    expect([...ink.pixels]).toEqual([...image.pixels]);
  });

  it('inverts a dark-on-light image, even when the object is off centre', () => {
    // Black bar in the top-left corner of a white page: the centre is white too, the inside as a whole is darker.
    const { image: ink, inverted } = extractInk(rectangle(200, 150, 1, 0, [20, 10, 60, 50]), 'scan.png');
    expect(inverted).toBe(true);
    expect([at(ink, 30, 20), at(ink, 100, 75), at(ink, 0, 0)]).toEqual([1, 0, 0]);
  });

  it('takes the background (the border median) to 0 and keeps full ink at 1', () => {
    // Gray paper (0.8), ink 0.2 and 0.5: inverted 0.2 background, ink 0.8 and 0.5 → (v - 0.2) / 0.8.
    const image = rectangle(60, 60, 0.8, 0.2, [20, 20, 30, 40]);
    for (let y = 20; y < 40; y++) for (let x = 30; x < 40; x++) image.pixels[y * 60 + x] = 0.5;
    const { image: ink, inverted } = extractInk(image, 'photo.jpg');
    expect(inverted).toBe(true);
    expect(at(ink, 25, 30)).toBeCloseTo(0.75, 6);
    expect(at(ink, 35, 30)).toBeCloseTo(0.375, 6);
    expect(at(ink, 5, 5)).toBe(0);
  });

  it('takes the background from a border as wide as one pixel of a 28×28 sample', () => {
    // A white digit on black inside a thin white margin (4 of the border's 10 pixels on a 280×280 image): the
    // border is mostly black, so nothing is inverted; a one-pixel border would have been all white.
    const image = rectangle(280, 280, 1, 0, [4, 4, 276, 276]);
    for (let y = 100; y < 180; y++) for (let x = 120; x < 160; x++) image.pixels[y * 280 + x] = 1;
    expect(extractInk(image, 'margin.png').inverted).toBe(false);
    // A dark digit on white with a 2-pixel dark scan edge along two sides: the border's median is white, and the
    // inside is darker on average, so the image is inverted although the edge darkens the border's mean.
    const scan = rectangle(280, 280, 1, 0, [120, 100, 160, 180]);
    for (let i = 0; i < 280; i++) for (let k = 0; k < 2; k++) scan.pixels[i * 280 + k] = scan.pixels[k * 280 + i] = 0;
    expect(extractInk(scan, 'scan.png').inverted).toBe(true);
  });

  it('finds no ink in an even image, and refuses one under 3×3 pixels, naming the file', () => {
    for (const v of [0, 0.6, 1])
      expect(extractInk(rectangle(50, 40, v, v, [0, 0, 0, 0]), 'even.png').image.pixels.every((p) => p === 0)).toBe(true);
    expect(() => extractInk(rectangle(2, 5, 0, 1, [0, 0, 1, 1]), 'tiny.png')).toThrow(
      new DataError('tiny.png: 2×5 pixels is too small (at least 3×3)'),
    );
  });
});
