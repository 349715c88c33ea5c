import type { GrayImage, PixelBox } from './gray-image.js';
import { extractInk, INK_THRESHOLD } from './ink.js';
import { resampleArea } from './resample-area.js';
import type { SampleStyle } from './sample-style.js';

/** An image made into a dataset sample: rows × cols bytes, row-major, 0 = background (as a Split's pixels). */
export interface ImageSample {
  rows: number;
  cols: number;
  pixels: Uint8Array;
  /** Whether the image was dark on light and so was inverted. */
  inverted: boolean;
}

/**
 * Makes a sample the way the dataset of `style` made its own: the ink of the image (extractInk: light on dark,
 * background 0) in the box of the ink above INK_THRESHOLD, scaled with area averaging so that the box's longer side
 * is `style.box` pixels, with a margin of one sample pixel around the box for the faint anti-aliased edge, and placed
 * in a `style.size` square by a whole-pixel shift: its centre of mass (pixel-index coordinates) to (size/2, size/2),
 * or its box to the middle; then rounded to bytes. DataError (naming `source`) for images too small or blank.
 */
export function toSample(image: GrayImage, style: SampleStyle, source: string): ImageSample {
  const { image: ink, inverted } = extractInk(image, source);
  const box = inkBox(ink);
  const bw = box.x1 - box.x0;
  const bh = box.y1 - box.y0;
  const scale = style.box / Math.max(bw, bh);
  // The 1e-9 keeps 20 / 7 · 7 (20.000000000000004) at 20 pixels. Grid pixel (1, 1) starts at the box's corner.
  const size = (n: number) => Math.max(1, Math.ceil(n * scale - 1e-9)) + 2;
  const grid = { x: box.x0 - 1 / scale, y: box.y0 - 1 / scale, scale, width: size(bw), height: size(bh) };
  const scaled = resampleArea(ink, grid);
  let dx: number;
  let dy: number;
  if (style.centre === 'mass') {
    const { x, y } = centreOfMass(scaled);
    dx = Math.round(style.size / 2 - x);
    dy = Math.round(style.size / 2 - y);
  } else {
    dx = Math.round((style.size - scale * bw) / 2) - 1;
    dy = Math.round((style.size - scale * bh) / 2) - 1;
  }
  const pixels = new Uint8Array(style.size * style.size);
  for (let y = 0; y < scaled.height; y++) {
    const ty = y + dy;
    if (ty < 0 || ty >= style.size) continue;
    for (let x = 0; x < scaled.width; x++) {
      const tx = x + dx;
      if (tx < 0 || tx >= style.size) continue;
      pixels[ty * style.size + tx] = Math.round(Math.min(1, scaled.pixels[y * scaled.width + x]) * 255);
    }
  }
  return { rows: style.size, cols: style.size, pixels, inverted };
}

/** The smallest box holding every pixel above INK_THRESHOLD. */
function inkBox(ink: GrayImage): PixelBox {
  let x0 = ink.width;
  let y0 = ink.height;
  let x1 = 0;
  let y1 = 0;
  for (let y = 0; y < ink.height; y++) {
    for (let x = 0; x < ink.width; x++) {
      if (ink.pixels[y * ink.width + x] > INK_THRESHOLD) {
        if (x < x0) x0 = x;
        if (x >= x1) x1 = x + 1;
        if (y < y0) y0 = y;
        if (y >= y1) y1 = y + 1;
      }
    }
  }
  // extractInk guarantees ink above the threshold.
  if (x1 <= x0) throw new Error('inkBox: no ink above INK_THRESHOLD (extractInk should have refused this image)');
  return { x0, y0, x1, y1 };
}

/** Intensity-weighted mean column and row (pixel-index coordinates: pixel (x, y) sits at x, y). */
function centreOfMass(image: GrayImage): { x: number; y: number } {
  let mass = 0;
  let sx = 0;
  let sy = 0;
  for (let y = 0; y < image.height; y++) {
    for (let x = 0; x < image.width; x++) {
      const v = image.pixels[y * image.width + x];
      mass += v;
      sx += v * x;
      sy += v * y;
    }
  }
  return { x: sx / mass, y: sy / mass };
}
