import { DataError } from '../data-error.js';
import type { GrayImage } from './gray-image.js';
import { extractInk } from './ink.js';
import { inkBox } from './ink-box.js';
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
 * background 0) in the box of its ink (inkBox: above INK_THRESHOLD, specks left out), scaled with area averaging so
 * that the box's longer side is `style.box` pixels, with a margin of one sample pixel around the box for the faint
 * anti-aliased edge, and placed in a `style.size` square by a whole-pixel shift: its centre of mass (pixel-index
 * coordinates) to (size/2, size/2), or its box to the middle; then rounded to bytes. DataError (naming `source`)
 * for images too small or blank (no ink above INK_THRESHOLD).
 */
export function toSample(image: GrayImage, style: SampleStyle, source: string): ImageSample {
  const { image: ink, inverted } = extractInk(image, source);
  const box = inkBox(ink);
  if (box === undefined) {
    throw new DataError(`${source}: blank image (nothing stands out from its background); give an image of one object`);
  }
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
