import jpeg from 'jpeg-js';
import { PNG } from 'pngjs';
import { DataError } from '../data-error.js';
import type { GrayImage } from './gray-image.js';

/** The largest image decoded, in pixels: gradq predict peaks at 1.6 GB on a 48-megapixel JPEG (9 s). */
export const MAX_IMAGE_PIXELS = 50_000_000;

/** What jpeg-js may allocate, enough for MAX_IMAGE_PIXELS (its default, 512 MB, refuses a 48-megapixel JPEG). */
const JPEG_MEMORY_MB = 1024;

type Format = 'PNG' | 'JPEG';

/**
 * Decodes a PNG or JPEG file (any size up to MAX_IMAGE_PIXELS, any colour type or bit depth) to grayscale:
 * luma Y = 0.299 R + 0.587 G + 0.114 B (ITU-R BT.601, as PIL's convert('L')), transparent pixels composited over
 * white (as a viewer shows them on a page). The format comes from the file's first bytes, not its name.
 * `source` names the file in errors: DataError for an empty file, another format, a damaged or too large image.
 */
export function decodeImage(bytes: Uint8Array, source: string): GrayImage {
  if (bytes.length === 0) throw new DataError(`${source}: empty file (0 bytes); give a PNG or JPEG image`);
  const format = detectFormat(bytes);
  if (format === undefined) {
    const other = otherFormat(bytes);
    const start = [...bytes.subarray(0, 8)].map((b) => b.toString(16).padStart(2, '0')).join(' ');
    throw new DataError(
      `${source}: not a PNG or JPEG image (${other ? `it looks like ${other}` : `it starts with bytes ${start}`}); convert it to PNG or JPEG`,
    );
  }
  const size = format === 'PNG' ? pngSize(bytes) : jpegSize(bytes);
  if (size !== undefined && size.width * size.height > MAX_IMAGE_PIXELS) {
    throw new DataError(
      `${source}: ${size.width}×${size.height} pixels is too large (at most ${MAX_IMAGE_PIXELS / 1e6} megapixels); scale it down first`,
    );
  }
  let rgba: { width: number; height: number; data: Uint8Array };
  try {
    rgba =
      format === 'PNG'
        ? PNG.sync.read(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength))
        : jpeg.decode(bytes, {
            useTArray: true,
            formatAsRGBA: true,
            tolerantDecoding: false,
            maxResolutionInMP: MAX_IMAGE_PIXELS / 1e6,
            maxMemoryUsageInMB: JPEG_MEMORY_MB,
          });
  } catch (e) {
    if (truncated(bytes, format)) {
      throw new DataError(`${source}: truncated ${format} image (it ends before its ${END[format].name}); the file is incomplete`, {
        cause: e,
      });
    }
    throw new DataError(`${source}: damaged ${format} image (${(e as Error).message})`, { cause: e });
  }
  if (!(rgba.width > 0 && rgba.height > 0)) throw new DataError(`${source}: ${format} image of ${rgba.width}×${rgba.height} pixels`);
  return { width: rgba.width, height: rgba.height, pixels: rgbaToGray(rgba.data, rgba.width * rgba.height) };
}

/** Luma of `count` RGBA pixels (8 bits per channel) in [0, 1], alpha composited over white. */
export function rgbaToGray(rgba: Uint8Array, count: number): Float32Array {
  const gray = new Float32Array(count);
  for (let i = 0; i < count; i++) {
    const o = 4 * i;
    const luma = (0.299 * rgba[o] + 0.587 * rgba[o + 1] + 0.114 * rgba[o + 2]) / 255;
    const alpha = rgba[o + 3] / 255;
    gray[i] = alpha * luma + (1 - alpha);
  }
  return gray;
}

/** What a complete file of each format ends with (a PNG's IEND chunk may be followed by other bytes). */
const END: Record<Format, { name: string; bytes: number[] }> = {
  PNG: { name: 'IEND chunk', bytes: [0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82] },
  JPEG: { name: 'end-of-image marker', bytes: [0xff, 0xd9] },
};

function truncated(bytes: Uint8Array, format: Format): boolean {
  const end = Buffer.from(END[format].bytes);
  const tail = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return format === 'PNG' ? tail.indexOf(end) < 0 : !tail.subarray(tail.length - 2).equals(end);
}

function startsWith(bytes: Uint8Array, prefix: readonly number[], at = 0): boolean {
  return bytes.length >= at + prefix.length && prefix.every((b, i) => bytes[at + i] === b);
}

function detectFormat(bytes: Uint8Array): Format | undefined {
  if (startsWith(bytes, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) return 'PNG';
  if (startsWith(bytes, [0xff, 0xd8, 0xff])) return 'JPEG';
  return undefined;
}

/** Image formats recognised only to name them in the error. */
function otherFormat(bytes: Uint8Array): string | undefined {
  const ascii = (s: string) => [...s].map((c) => c.charCodeAt(0));
  if (startsWith(bytes, ascii('GIF8'))) return 'a GIF';
  if (startsWith(bytes, ascii('RIFF')) && startsWith(bytes, ascii('WEBP'), 8)) return 'a WebP';
  if (startsWith(bytes, [0x49, 0x49, 0x2a, 0x00]) || startsWith(bytes, [0x4d, 0x4d, 0x00, 0x2a])) return 'a TIFF';
  if (startsWith(bytes, ascii('BM')) && bytes.length >= 26) return 'a BMP';
  return undefined;
}

/** Width and height from a PNG's IHDR chunk (right after the signature), when the file is long enough to hold it. */
function pngSize(bytes: Uint8Array): { width: number; height: number } | undefined {
  if (bytes.length < 24) return undefined;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return { width: view.getUint32(16), height: view.getUint32(20) };
}

/** Width and height from a JPEG's first start-of-frame segment (SOF0–SOF15 but DHT, JPG, DAC), if one is found. */
function jpegSize(bytes: Uint8Array): { width: number; height: number } | undefined {
  let o = 2;
  while (o + 9 <= bytes.length) {
    if (bytes[o] !== 0xff) return undefined;
    const marker = bytes[o + 1];
    if (marker === 0xff) {
      o++; // fill byte
      continue;
    }
    const length = (bytes[o + 2] << 8) | bytes[o + 3];
    if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
      return { height: (bytes[o + 5] << 8) | bytes[o + 6], width: (bytes[o + 7] << 8) | bytes[o + 8] };
    }
    if (marker === 0xda) return undefined; // start of scan before any frame header
    o += 2 + length;
  }
  return undefined;
}
