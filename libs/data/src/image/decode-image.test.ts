import jpeg from 'jpeg-js';
import { PNG, type ColorType } from 'pngjs';
import { describe, expect, it } from 'vitest';
import { DataError } from '../data-error.js';
import { decodeImage, MAX_IMAGE_PIXELS } from './decode-image.js';

/** A PNG of the given RGBA pixels, stored as colour type `colorType` (0 gray, 2 RGB, 4 gray + alpha, 6 RGBA). */
function png(width: number, height: number, rgba: number[], colorType: ColorType): Uint8Array {
  const image = new PNG({ width, height });
  image.data.set(rgba);
  return PNG.sync.write(image, { colorType });
}

/** A pseudo-random RGBA image (fixed seed), every pixel opaque. */
function colours(count: number): number[] {
  let s = 12345;
  const next = () => (s = (s * 1103515245 + 12345) % 2 ** 31) % 256;
  return Array.from({ length: count }, () => [next(), next(), next(), 255]).flat();
}

const error = (bytes: Uint8Array, source = 'x.png'): string => {
  try {
    decodeImage(bytes, source);
  } catch (e) {
    expect(e).toBeInstanceOf(DataError);
    return (e as Error).message;
  }
  throw new Error('decoded without an error');
};

describe('decodeImage', () => {
  it('reads a grayscale PNG as value / 255', () => {
    const values = [0, 1, 127, 128, 254, 255];
    const image = decodeImage(png(3, 2, values.map((v) => [v, v, v, 255]).flat(), 0), 'g.png');
    expect([image.width, image.height]).toEqual([3, 2]);
    expect([...image.pixels].map((v) => Math.round(v * 255 * 1000) / 1000)).toEqual(values);
  });

  it('reads an RGB PNG as BT.601 luma', () => {
    const rgba = colours(64);
    const image = decodeImage(png(8, 8, rgba, 2), 'rgb.png');
    for (let i = 0; i < 64; i++) {
      const [r, g, b] = rgba.slice(4 * i, 4 * i + 3);
      expect(image.pixels[i]).toBeCloseTo((299 * r + 587 * g + 114 * b) / 255_000, 6);
    }
  });

  it('composites transparent pixels over white', () => {
    // Opaque black, transparent black, transparent red, half-transparent black.
    const image = decodeImage(png(4, 1, [0, 0, 0, 255, 0, 0, 0, 0, 255, 0, 0, 0, 0, 0, 0, 128], 6), 'a.png');
    expect(image.pixels[0]).toBe(0);
    expect(image.pixels[1]).toBe(1);
    expect(image.pixels[2]).toBe(1);
    expect(image.pixels[3]).toBeCloseTo(127 / 255, 6);
  });

  it('reads a JPEG (lossy: within a few levels of the luma) whatever the file is called', () => {
    // A smooth image: JPEG keeps it within a few levels.
    const rgba = Array.from({ length: 32 * 24 }, (_, i) => [(i % 32) * 8, Math.floor(i / 32) * 10, 128, 255]).flat();
    const bytes = jpeg.encode({ width: 32, height: 24, data: Buffer.from(rgba) }, 100).data;
    const image = decodeImage(bytes, 'photo.png');
    expect([image.width, image.height]).toEqual([32, 24]);
    for (let i = 0; i < 32 * 24; i++) {
      const [r, g, b] = rgba.slice(4 * i, 4 * i + 3);
      expect(Math.abs(image.pixels[i] - (299 * r + 587 * g + 114 * b) / 255_000)).toBeLessThan(4 / 255);
    }
  });

  it('refuses an empty file, naming it', () =>
    expect(error(new Uint8Array(0), 'empty.png')).toMatch(/^empty\.png: empty file \(0 bytes\)/));

  it('refuses a text file, quoting its first bytes', () =>
    expect(error(new TextEncoder().encode('hello, world'), 'notes.txt')).toMatch(
      /^notes\.txt: not a PNG or JPEG image \(it starts with bytes 68 65 6c 6c 6f 2c 20 77\); convert it/,
    ));

  it('names the formats it does not read', () => {
    expect(error(new TextEncoder().encode('GIF89a\x01\x00\x01\x00'), 'a.gif')).toContain('it looks like a GIF');
    expect(error(new TextEncoder().encode('RIFF\x10\x00\x00\x00WEBPVP8 '), 'a.webp')).toContain('it looks like a WebP');
  });

  it('refuses a truncated PNG and a truncated JPEG', () => {
    const p = png(16, 16, colours(256), 2);
    expect(error(p.subarray(0, p.length - 20), 'cut.png')).toBe(
      'cut.png: truncated PNG image (it ends before its IEND chunk); the file is incomplete',
    );
    const j = jpeg.encode({ width: 16, height: 16, data: Buffer.from(colours(256)) }, 90).data;
    expect(error(j.subarray(0, j.length >> 1), 'cut.jpg')).toBe(
      'cut.jpg: truncated JPEG image (it ends before its end-of-image marker); the file is incomplete',
    );
  });

  it('refuses a damaged PNG, quoting the decoder', () => {
    const p = png(16, 16, colours(256), 2);
    p[40] ^= 0xff; // a byte of the IDAT chunk
    expect(error(p, 'bad.png')).toMatch(/^bad\.png: damaged PNG image \(.+\)$/);
  });

  it('refuses images above MAX_IMAGE_PIXELS from their headers, before decoding', () => {
    const side = Math.ceil(Math.sqrt(MAX_IMAGE_PIXELS)) + 1;
    const p = png(2, 2, colours(4), 2);
    new DataView(p.buffer, p.byteOffset).setUint32(16, side);
    new DataView(p.buffer, p.byteOffset).setUint32(20, side);
    expect(error(p, 'big.png')).toBe(`big.png: ${side}×${side} pixels is too large (at most 50 megapixels); scale it down first`);
    // SOI, then a baseline frame header of 60000×60000.
    const j = Uint8Array.from([0xff, 0xd8, 0xff, 0xc0, 0, 11, 8, 0xea, 0x60, 0xea, 0x60, 1, 1, 0x11, 0]);
    expect(error(j, 'big.jpg')).toContain('big.jpg: 60000×60000 pixels is too large');
  });
});
