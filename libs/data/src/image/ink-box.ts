import type { GrayImage, PixelBox } from './gray-image.js';

/** Ink at or below this (5% of full intensity, the tolerance Fashion-MNIST trimmed its images with) is background. */
export const INK_THRESHOLD = 0.05;

/**
 * Blobs with less than this share of an image's ink are specks (dust, noise): left out of its box. At the datasets'
 * scale 1% is about one full pixel of a digit (MNIST digits hold about 100 full pixels of ink).
 */
export const SPECK_SHARE = 0.01;

/**
 * The box of an image's ink: pixels above INK_THRESHOLD that touch (sides or corners) form blobs, and the box holds
 * every blob with at least SPECK_SHARE of their summed ink (a share that does not change when the image is
 * enlarged), or all of them when none has. Undefined when no pixel is above the threshold.
 */
export function inkBox(ink: GrayImage): PixelBox | undefined {
  const { width, height, pixels } = ink;
  let above = 0;
  for (let i = 0; i < pixels.length; i++) if (pixels[i] > INK_THRESHOLD) above++;
  if (above === 0) return undefined;
  const seen = new Uint8Array(pixels.length);
  const queue = new Int32Array(above);
  const blobs: (PixelBox & { mass: number })[] = [];
  for (let start = 0; start < pixels.length; start++) {
    if (seen[start] || !(pixels[start] > INK_THRESHOLD)) continue;
    // Breadth-first over the blob.
    const blob = { mass: 0, x0: width, y0: height, x1: 0, y1: 0 };
    let head = 0;
    let tail = 0;
    queue[tail++] = start;
    seen[start] = 1;
    while (head < tail) {
      const i = queue[head++];
      const x = i % width;
      const y = (i - x) / width;
      blob.mass += pixels[i];
      blob.x0 = Math.min(blob.x0, x);
      blob.y0 = Math.min(blob.y0, y);
      blob.x1 = Math.max(blob.x1, x + 1);
      blob.y1 = Math.max(blob.y1, y + 1);
      for (let ny = Math.max(0, y - 1); ny <= Math.min(height - 1, y + 1); ny++) {
        for (let nx = Math.max(0, x - 1); nx <= Math.min(width - 1, x + 1); nx++) {
          const n = ny * width + nx;
          if (!seen[n] && pixels[n] > INK_THRESHOLD) {
            seen[n] = 1;
            queue[tail++] = n;
          }
        }
      }
    }
    blobs.push(blob);
  }
  const total = blobs.reduce((s, b) => s + b.mass, 0);
  const heavy = blobs.filter((b) => b.mass >= SPECK_SHARE * total);
  const kept = heavy.length > 0 ? heavy : blobs;
  return {
    x0: Math.min(...kept.map((b) => b.x0)),
    y0: Math.min(...kept.map((b) => b.y0)),
    x1: Math.max(...kept.map((b) => b.x1)),
    y1: Math.max(...kept.map((b) => b.y1)),
  };
}
