import { gzipSync } from 'node:zlib';

/** Test helpers: tiny synthetic IDX files. Not part of the public API. */

/** An unsigned-byte IDX file with the given dims and payload. */
export function makeIdx(dims: readonly number[], data: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + 4 * dims.length + data.length);
  const view = new DataView(out.buffer);
  out[2] = 0x08;
  out[3] = dims.length;
  dims.forEach((d, i) => view.setUint32(4 + 4 * i, d));
  out.set(data, 4 + 4 * dims.length);
  return out;
}

/** The pixel value that synthetic image files hold at flat position i. */
export function syntheticPixel(i: number): number {
  return (i * 37 + 11) & 0xff;
}

/** An IDX image file (magic 0x00000803) whose pixel i is syntheticPixel(i). */
export function makeIdxImages(count: number, rows: number, cols: number): Uint8Array {
  const pixels = new Uint8Array(count * rows * cols);
  for (let i = 0; i < pixels.length; i++) pixels[i] = syntheticPixel(i);
  return makeIdx([count, rows, cols], pixels);
}

/** An IDX label file (magic 0x00000801) holding `labels`. */
export function makeIdxLabels(labels: readonly number[]): Uint8Array {
  return makeIdx([labels.length], Uint8Array.from(labels));
}

/** Gzips bytes, as the dataset files are stored. */
export function gzip(bytes: Uint8Array): Uint8Array {
  return new Uint8Array(gzipSync(bytes));
}
