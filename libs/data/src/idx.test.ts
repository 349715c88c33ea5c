import { DataError } from './data-error.js';
import { describe, expect, it } from 'vitest';
import { gzipSync } from 'node:zlib';
import { decompressIdx, MAX_IDX_BYTES, pairImagesLabels, parseIdx, readIdxImages, readIdxLabels } from './idx.js';
import { gzip, makeIdx, makeIdxImages, makeIdxLabels, syntheticPixel } from './testing/idx-fixtures.js';

function errorOf(fn: () => unknown): DataError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(DataError);
    expect((err as Error).message).not.toContain('\n');
    return err as DataError;
  }
  throw new Error('expected a DataError, nothing was thrown');
}

describe('parseIdx', () => {
  it('reads dims and payload of a raw IDX file', () => {
    const { dims, data } = parseIdx(makeIdx([2, 3], Uint8Array.of(1, 2, 3, 4, 5, 6)), 'a');
    expect(dims).toEqual([2, 3]);
    expect([...data]).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it('reads a gzipped IDX file the same as the raw one', () => {
    const raw = makeIdxImages(3, 4, 5);
    expect(parseIdx(gzip(raw), 'a')).toEqual(parseIdx(raw, 'a'));
  });

  it('names the file and says truncated for a cut-off gzip stream', () => {
    const gz = gzip(makeIdxImages(50, 28, 28));
    const err = errorOf(() => parseIdx(gz.subarray(0, gz.length >> 1), 'train-images-idx3-ubyte.gz'));
    expect(err.message).toMatch(/^train-images-idx3-ubyte\.gz: truncated or corrupt gzip data \(.+\); delete it and download again$/);
  });

  it('rejects a file shorter than the 4-byte magic', () => {
    expect(errorOf(() => parseIdx(Uint8Array.of(0, 0), 'f')).message).toBe(
      'f: 2 bytes is too short for an IDX header (expected at least 4); delete it and download again',
    );
  });

  it('rejects a magic whose first two bytes are not zero', () => {
    expect(errorOf(() => parseIdx(Uint8Array.of(0x50, 0x4b, 3, 4, 0, 0), 'f')).message).toContain(
      'f: not an IDX file (magic number 0x504b0304',
    );
  });

  it('rejects element types other than unsigned byte', () => {
    const bytes = makeIdx([1], Uint8Array.of(0));
    bytes[2] = 0x0d;
    expect(errorOf(() => parseIdx(bytes, 'f')).message).toContain('f: IDX element type 0x0d is not supported (expected 0x08');
  });

  it('rejects a header cut off inside the dimensions', () => {
    expect(errorOf(() => parseIdx(makeIdx([2, 3, 4], new Uint8Array(24)).subarray(0, 10), 'f')).message).toContain(
      'f: truncated IDX header (10 bytes, expected 16 for rank 3)',
    );
  });

  it('rejects a zero dimension', () => {
    expect(errorOf(() => parseIdx(makeIdx([0, 28, 28], new Uint8Array(0)), 'f')).message).toContain('f: dimension 0 is 0 (dims 0x28x28');
  });

  it('reports a truncated payload with expected and found byte counts', () => {
    const bytes = makeIdx([2, 3], new Uint8Array(6)).subarray(0, 12 + 5);
    expect(errorOf(() => parseIdx(bytes, 'f')).message).toBe(
      'f: truncated: 5 payload bytes, expected 6 for dims 2x3; delete it and download again',
    );
  });

  it('reports trailing bytes with expected and found byte counts', () => {
    expect(errorOf(() => parseIdx(makeIdx([2, 3], new Uint8Array(8)), 'f')).message).toBe(
      'f: 2 trailing bytes: 8 payload bytes, expected 6 for dims 2x3; use the official dataset files',
    );
  });
});

describe('readIdxImages', () => {
  it('returns count, rows, cols and the pixels in file order', () => {
    const images = readIdxImages(gzip(makeIdxImages(3, 4, 5)), 'imgs');
    expect([images.count, images.rows, images.cols]).toEqual([3, 4, 5]);
    expect(images.pixels.length).toBe(60);
    expect(images.pixels[59]).toBe(syntheticPixel(59));
  });

  it('rejects a label file with the wrong magic number', () => {
    expect(errorOf(() => readIdxImages(makeIdxLabels([1, 2]), 'train-images-idx3-ubyte')).message).toBe(
      'train-images-idx3-ubyte: wrong magic number 0x00000801 (expected 0x00000803, an IDX image file)',
    );
  });
});

describe('readIdxLabels', () => {
  it('returns the labels', () => {
    const labels = readIdxLabels(makeIdxLabels([5, 0, 9]), 'l');
    expect(labels.count).toBe(3);
    expect([...labels.labels]).toEqual([5, 0, 9]);
  });

  it('rejects an image file with the wrong magic number', () => {
    expect(errorOf(() => readIdxLabels(makeIdxImages(1, 2, 2), 't10k-labels-idx1-ubyte')).message).toBe(
      't10k-labels-idx1-ubyte: wrong magic number 0x00000803 (expected 0x00000801, an IDX label file)',
    );
  });

  it('names the index and value of a label outside 0-9', () => {
    expect(errorOf(() => readIdxLabels(makeIdxLabels([1, 2, 10, 3]), 'l')).message).toContain(
      'l: label 10 at index 2 is out of range (expected 0 to 9)',
    );
  });
});

describe('pairImagesLabels', () => {
  it('builds a split with features = rows * cols', () => {
    const split = pairImagesLabels(readIdxImages(makeIdxImages(2, 3, 4), 'i'), readIdxLabels(makeIdxLabels([1, 2]), 'l'), {
      images: 'i',
      labels: 'l',
    });
    expect([split.count, split.rows, split.cols, split.features]).toEqual([2, 3, 4, 12]);
    expect([...split.labels]).toEqual([1, 2]);
  });

  it('rejects image and label files whose counts differ', () => {
    const images = { count: 60000, rows: 28, cols: 28, pixels: new Uint8Array(0) };
    const labels = { count: 59999, labels: new Uint8Array(0) };
    expect(errorOf(() => pairImagesLabels(images, labels, { images: 'ti', labels: 'tl' })).message).toBe(
      'ti has 60000 images but tl has 59999 labels; use the image and label files of the same split',
    );
  });
});

describe('decompressIdx and gzip bombs', () => {
  const labelsHeader = (count: number) =>
    Buffer.from([0, 0, 8, 1, (count >>> 24) & 255, (count >>> 16) & 255, (count >>> 8) & 255, count & 255]);

  it('stops inflating at the size the IDX header announces', () => {
    // 10 labels announced, 64 MB of zeros after them: about 64 KB gzipped.
    const bomb = gzipSync(Buffer.concat([labelsHeader(10), Buffer.alloc(64 * 1024 * 1024)]));
    expect(bomb.length).toBeLessThan(200_000);
    const before = process.memoryUsage().arrayBuffers;
    expect(() => decompressIdx(bomb, 'bomb-labels.gz')).toThrow(
      new DataError(
        'bomb-labels.gz: inflates to more than the 18 bytes its IDX header announces (stopped there); delete it and download again',
      ),
    );
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(16 * 1024 * 1024);
  });

  it('bounds a header that announces more than any dataset file', () => {
    const bomb = gzipSync(Buffer.concat([Buffer.from([0, 0, 8, 2, 0x7f, 0xff, 0xff, 0xff, 0x7f, 0xff, 0xff, 0xff]), Buffer.alloc(1024)]));
    expect(decompressIdx(bomb, 'x.gz').length).toBe(12 + 1024); // shorter than announced: parseIdx reports the truncation
    expect(MAX_IDX_BYTES).toBe(512 * 1024 * 1024);
  });

  it('inflates a file of exactly the announced size', () => {
    const labels = Buffer.concat([labelsHeader(3), Buffer.from([1, 2, 3])]);
    expect(Buffer.from(decompressIdx(gzipSync(labels), 'ok.gz'))).toEqual(labels);
  });
});
