import { constants, gunzipSync } from 'node:zlib';
import { DataError } from './data-error.js';
import type { Split } from './split.js';

/**
 * IDX files (the MNIST format): a 4-byte magic number 0x00 0x00 TYPE RANK, RANK big-endian uint32
 * dimensions, then the elements row-major. We accept only TYPE 0x08 (unsigned byte).
 */
const IDX_UBYTE = 0x08;
const IMAGES_MAGIC = 0x00000803;
const LABELS_MAGIC = 0x00000801;
const CLASS_COUNT = 10;

export interface IdxArray {
  dims: number[];
  data: Uint8Array;
}

export interface IdxImages {
  count: number;
  rows: number;
  cols: number;
  pixels: Uint8Array;
}

export interface IdxLabels {
  count: number;
  labels: Uint8Array;
}

/** True when `bytes` start with the gzip magic 0x1f 0x8b. */
export function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

const MAX_CHUNK = 256 * 1024 * 1024;
/** The largest decompressed IDX file accepted (MNIST's largest is 47 MB): a bound for headers that announce more. */
export const MAX_IDX_BYTES = 512 * 1024 * 1024;

/**
 * Returns the decompressed bytes of gzip data, or `bytes` itself when they are not gzipped. A gzip bomb costs
 * no more than the file claims to be: the start of the stream is inflated first to read the IDX header, and the
 * whole is inflated with its output capped at the size that header announces (at most MAX_IDX_BYTES), failing
 * as soon as it would grow past it.
 */
export function decompressIdx(bytes: Uint8Array, file: string): Uint8Array {
  if (!isGzip(bytes)) return bytes;
  const limit = Math.min(announcedIdxBytes(bytes) ?? MAX_IDX_BYTES, MAX_IDX_BYTES);
  try {
    // One output chunk of the size the gzip trailer states (ISIZE, capped) instead of 16 KiB chunks joined at the
    // end: that join briefly doubles the memory (94 MB instead of 47 for MNIST's training images). ISIZE is only
    // believed up to deflate's largest ratio (1032:1) and the announced size; a wrong one costs more chunks or a
    // larger first chunk, and the content is checked by its hash anyway.
    const isize = bytes.length >= 18 ? new DataView(bytes.buffer, bytes.byteOffset + bytes.length - 4, 4).getUint32(0, true) : 0;
    const chunk = Math.min(isize + 1, bytes.length * 1032, MAX_CHUNK, limit + 1);
    const out = gunzipSync(bytes, { chunkSize: Math.max(chunk, 64 * 1024), maxOutputLength: limit });
    return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') {
      throw new DataError(
        `${file}: inflates to more than the ${limit} bytes its IDX header announces (stopped there); delete it and download again`,
      );
    }
    const reason = err instanceof Error ? err.message : String(err);
    throw new DataError(`${file}: truncated or corrupt gzip data (${reason}); delete it and download again`, {
      cause: err,
    });
  }
}

/**
 * The size of the IDX file inside gzip data as its header announces it (4 + 4·rank + the product of the
 * dimensions), read by inflating only the stream's first kilobyte; undefined when that is not an IDX header.
 */
function announcedIdxBytes(gzip: Uint8Array): number | undefined {
  let head: Buffer;
  try {
    // Z_SYNC_FLUSH: what the first bytes inflate to, without asking for the rest of the stream.
    head = gunzipSync(gzip.subarray(0, 1024), { finishFlush: constants.Z_SYNC_FLUSH, maxOutputLength: 2 * 1024 * 1024 });
  } catch {
    return undefined; // the full inflate reports what is wrong
  }
  if (head.length < 4 || head[0] !== 0 || head[1] !== 0 || head[3] === 0 || head.length < 4 + 4 * head[3]) return undefined;
  let size = 1;
  for (let i = 0; i < head[3]; i++) size *= readUint32(head, 4 + 4 * i);
  return 4 + 4 * head[3] + size;
}

/** Parses an unsigned-byte IDX file (gzipped or raw) into its dimensions and a view of its elements. */
export function parseIdx(bytes: Uint8Array, file: string): IdxArray {
  const raw = decompressIdx(bytes, file);
  if (raw.length < 4) {
    throw new DataError(`${file}: ${raw.length} bytes is too short for an IDX header (expected at least 4); delete it and download again`);
  }
  if (raw[0] !== 0 || raw[1] !== 0) {
    throw new DataError(
      `${file}: not an IDX file (magic number ${hex32(readUint32(raw, 0))}, expected 0x0000TTRR); check that the path names an IDX file`,
    );
  }
  if (raw[2] !== IDX_UBYTE) {
    throw new DataError(
      `${file}: IDX element type 0x${hex8(raw[2])} is not supported (expected 0x08, unsigned byte); use the official dataset files`,
    );
  }
  const rank = raw[3];
  if (rank === 0) throw new DataError(`${file}: IDX rank is 0 (expected at least 1); the file is corrupt`);
  const headerBytes = 4 + 4 * rank;
  if (raw.length < headerBytes) {
    throw new DataError(
      `${file}: truncated IDX header (${raw.length} bytes, expected ${headerBytes} for rank ${rank}); delete it and download again`,
    );
  }
  const dims: number[] = [];
  for (let i = 0; i < rank; i++) dims.push(readUint32(raw, 4 + 4 * i));
  const zero = dims.indexOf(0);
  if (zero >= 0) {
    throw new DataError(
      `${file}: dimension ${zero} is 0 (dims ${dims.join('x')}, expected every dimension >= 1); the file is corrupt or empty`,
    );
  }
  const expected = dims.reduce((a, d) => a * d, 1);
  const found = raw.length - headerBytes;
  if (found < expected) {
    throw new DataError(
      `${file}: truncated: ${found} payload bytes, expected ${expected} for dims ${dims.join('x')}; delete it and download again`,
    );
  }
  if (found > expected) {
    throw new DataError(
      `${file}: ${found - expected} trailing bytes: ${found} payload bytes, expected ${expected} for dims ${dims.join('x')}; use the official dataset files`,
    );
  }
  return { dims, data: raw.subarray(headerBytes) };
}

/** Parses an IDX image file (magic 0x00000803: count x rows x cols unsigned bytes). */
export function readIdxImages(bytes: Uint8Array, file: string): IdxImages {
  const raw = decompressIdx(bytes, file);
  expectMagic(raw, file, IMAGES_MAGIC, 'an IDX image file');
  const { dims, data } = parseIdx(raw, file);
  return { count: dims[0], rows: dims[1], cols: dims[2], pixels: data };
}

/** Parses an IDX label file (magic 0x00000801: count unsigned bytes, each in [0, 10)). */
export function readIdxLabels(bytes: Uint8Array, file: string): IdxLabels {
  const raw = decompressIdx(bytes, file);
  expectMagic(raw, file, LABELS_MAGIC, 'an IDX label file');
  const { dims, data } = parseIdx(raw, file);
  for (let i = 0; i < data.length; i++) {
    if (data[i] >= CLASS_COUNT) {
      throw new DataError(
        `${file}: label ${data[i]} at index ${i} is out of range (expected 0 to ${CLASS_COUNT - 1}); the file is corrupt: delete it and download again`,
      );
    }
  }
  return { count: dims[0], labels: data };
}

/** Joins an image file and a label file into a Split after checking that their counts agree. */
export function pairImagesLabels(images: IdxImages, labels: IdxLabels, names: { images: string; labels: string }): Split {
  if (images.count !== labels.count) {
    throw new DataError(
      `${names.images} has ${images.count} images but ${names.labels} has ${labels.count} labels; use the image and label files of the same split`,
    );
  }
  return {
    count: images.count,
    rows: images.rows,
    cols: images.cols,
    features: images.rows * images.cols,
    pixels: images.pixels,
    labels: labels.labels,
  };
}

function expectMagic(raw: Uint8Array, file: string, magic: number, what: string): void {
  if (raw.length < 4) return; // parseIdx reports the short header
  const found = readUint32(raw, 0);
  if (found !== magic) {
    throw new DataError(`${file}: wrong magic number ${hex32(found)} (expected ${hex32(magic)}, ${what})`);
  }
}

function readUint32(bytes: Uint8Array, offset: number): number {
  return ((bytes[offset] << 24) | (bytes[offset + 1] << 16) | (bytes[offset + 2] << 8) | bytes[offset + 3]) >>> 0;
}

function hex32(v: number): string {
  return `0x${v.toString(16).padStart(8, '0')}`;
}

function hex8(v: number): string {
  return v.toString(16).padStart(2, '0');
}
