import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { DataError } from '../data-error.js';
import { loadSplit } from '../load.js';
import type { Split } from '../split.js';
import type { GrayImage } from './gray-image.js';
import { SAMPLE_STYLES, sampleStyle } from './sample-style.js';
import { toSample } from './to-sample.js';

const SHARED_DATA = fileURLToPath(new URL('../../../../../shared/data', import.meta.url));

/** Sample i of a split as the image it is (bytes / 255). */
function asImage(split: Split, i: number): GrayImage {
  const pixels = Float32Array.from(split.pixels.subarray(i * split.features, (i + 1) * split.features), (v) => v / 255);
  return { width: split.cols, height: split.rows, pixels };
}

/**
 * Sample i enlarged k times (each pixel a k×k block) at (x, y) of a width × height page, dark on light: `paper` where
 * the sample is 0, `ink` where it is 255, in between linearly.
 */
function onPage(
  split: Split,
  i: number,
  page: { width: number; height: number; x: number; y: number; k: number; ink: number; paper: number },
): GrayImage {
  const { width, height, x, y, k, ink, paper } = page;
  const pixels = new Float32Array(width * height).fill(paper);
  for (let r = 0; r < split.rows * k; r++) {
    for (let c = 0; c < split.cols * k; c++) {
      const v = split.pixels[i * split.features + Math.floor(r / k) * split.cols + Math.floor(c / k)] / 255;
      pixels[(y + r) * width + x + c] = paper + (ink - paper) * v;
    }
  }
  return { width, height, pixels };
}

const sampleOf = (split: Split, i: number) => [...split.pixels.subarray(i * split.features, (i + 1) * split.features)];

let mnist: Split;
let fashion: Split;
beforeAll(async () => {
  [mnist, fashion] = await Promise.all([
    loadSplit('mnist', 'test', { dataDir: SHARED_DATA }),
    loadSplit('fashion-mnist', 'test', { dataDir: SHARED_DATA }),
  ]);
});

describe('toSample on the datasets’ own samples', () => {
  it('gives back 99% of the MNIST test digits; the others lose a speck (under 1% of their ink) that set their box', () => {
    let same = 0;
    let diff = 0;
    for (let i = 0; i < mnist.count; i++) {
      const { pixels, inverted } = toSample(asImage(mnist, i), SAMPLE_STYLES.mnist, `mnist ${i}`);
      expect(inverted).toBe(false);
      if (pixels.every((v, k) => v === mnist.pixels[i * 784 + k])) same++;
      for (let k = 0; k < 784; k++) diff += Math.abs(pixels[k] - mnist.pixels[i * 784 + k]);
    }
    expect(same).toBeGreaterThan(0.99 * mnist.count);
    expect(diff / (mnist.count * 784)).toBeLessThan(0.5); // mean absolute difference per pixel, of 255
  });

  it('gives back most Fashion-MNIST test images; the rest differ by faint edges (below the 5% ink threshold) or specks', () => {
    let same = 0;
    let diff = 0;
    for (let i = 0; i < fashion.count; i++) {
      const { pixels } = toSample(asImage(fashion, i), SAMPLE_STYLES['fashion-mnist'], `fashion ${i}`);
      if (pixels.every((v, k) => v === fashion.pixels[i * 784 + k])) same++;
      for (let k = 0; k < 784; k++) diff += Math.abs(pixels[k] - fashion.pixels[i * 784 + k]);
    }
    expect(same).toBeGreaterThan(0.88 * fashion.count);
    expect(diff / (fashion.count * 784)).toBeLessThan(3); // mean absolute difference per pixel, of 255
  });
});

describe('toSample on images made from samples', () => {
  const page = { width: 200, height: 150, x: 47, y: 6, k: 5, ink: 0, paper: 1 };

  it.each([
    ['mnist', () => mnist],
    ['fashion-mnist', () => fashion],
  ])('%s: a sample enlarged 5×, black on a white 200×150 page off centre, makes the same sample as the sample itself', (name, split) => {
    const style = sampleStyle(name);
    for (let i = 0; i < 50; i++) {
      const original = toSample(asImage(split(), i), style, 'sample').pixels;
      const { pixels, inverted } = toSample(onPage(split(), i, page), style, 'page');
      expect(inverted).toBe(true);
      expect([...pixels], `${name} test sample ${i}`).toEqual([...original]);
    }
  });

  it('on gray paper with gray ink, stays within a few levels of the sample', () => {
    for (let i = 0; i < 50; i++) {
      const { pixels } = toSample(onPage(mnist, i, { ...page, ink: 0.15, paper: 0.85 }), SAMPLE_STYLES.mnist, 'photo');
      // Ink 0.15 on paper 0.85: full ink becomes (0.85 - 0.15) / 0.85 = 82% of 255.
      const expected = sampleOf(mnist, i).map((v) => v * (0.7 / 0.85));
      const error = pixels.reduce((s, v, k) => s + Math.abs(v - expected[k]), 0) / 784;
      expect(error, `MNIST test sample ${i}`).toBeLessThan(1);
    }
  });
});

describe('toSample on drawn shapes', () => {
  /** A black rectangle [x0, x1) × [y0, y1) on a white width × height page. */
  function rectangle(width: number, height: number, [x0, y0, x1, y1]: number[]): GrayImage {
    const pixels = new Float32Array(width * height).fill(1);
    for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) pixels[y * width + x] = 0;
    return { width, height, pixels };
  }
  /** Rows and columns [r0, r1) × [c0, c1) of a 28×28 sample at 255, the rest 0. */
  function filled(c0: number, r0: number, c1: number, r1: number): number[] {
    return Array.from({ length: 784 }, (_, k) =>
      k % 28 >= c0 && k % 28 < c1 && Math.floor(k / 28) >= r0 && Math.floor(k / 28) < r1 ? 255 : 0,
    );
  }

  it('MNIST: a 55×100 bar becomes 11×20, its centre of mass on pixel 14 across, 14.5 down (rounded half up)', () => {
    const { pixels } = toSample(rectangle(300, 200, [30, 70, 85, 170]), SAMPLE_STYLES.mnist, 'bar.png');
    // Columns: the 11 columns' mean index 5 + 1 margin → shifted to 14: columns 9..19. Rows: mean 9.5 + 1 → 14 - 10.5 = 3.5 → 4: rows 5..24.
    expect([...pixels]).toEqual(filled(9, 5, 20, 25));
  });

  it('Fashion-MNIST: a 50×100 bar becomes 14×28, centred: columns 7..20, every row', () => {
    const { pixels } = toSample(rectangle(300, 200, [200, 60, 250, 160]), SAMPLE_STYLES['fashion-mnist'], 'bar.png');
    expect([...pixels]).toEqual(filled(7, 0, 21, 28));
  });

  /** The middle column of a sample, after checking that every row is uniform. */
  function rowsOf(pixels: Uint8Array): number[] {
    for (let r = 0; r < 28; r++) expect(new Set(pixels.subarray(r * 28, r * 28 + 28)).size, `row ${r}`).toBe(1);
    return Array.from({ length: 28 }, (_, r) => pixels[r * 28 + 14]);
  }

  it('Fashion-MNIST: a wide 100×25 bar becomes 28×7, the odd row left over above it, as in the dataset', () => {
    const { pixels } = toSample(rectangle(300, 200, [120, 50, 220, 75]), SAMPLE_STYLES['fashion-mnist'], 'bar.png');
    expect(rowsOf(pixels)).toEqual([...Array(11).fill(0), ...Array(7).fill(255), ...Array(10).fill(0)]);
  });

  it('Fashion-MNIST: a wide 100×30 bar becomes 28×8.4, its last row 40% ink, 9.8 → 10 rows above it', () => {
    const { pixels } = toSample(rectangle(300, 200, [120, 50, 220, 80]), SAMPLE_STYLES['fashion-mnist'], 'bar.png');
    expect(rowsOf(pixels)).toEqual([...Array(10).fill(0), ...Array(8).fill(255), Math.round(0.4 * 255), ...Array(9).fill(0)]);
  });

  it('refuses a blank page and one with only faint marks (up to 5%), naming the file', () => {
    const blank = new DataError('blank.png: blank image (nothing stands out from its background); give an image of one object');
    expect(() => toSample(rectangle(40, 30, [0, 0, 0, 0]), SAMPLE_STYLES.mnist, 'blank.png')).toThrow(blank);
    const faint = rectangle(40, 30, [10, 10, 20, 20]);
    faint.pixels.forEach((v, i) => (faint.pixels[i] = v === 0 ? 0.96 : v));
    expect(() => toSample(faint, SAMPLE_STYLES.mnist, 'blank.png')).toThrow(blank);
  });
});

describe('sampleStyle', () => {
  it('knows every dataset, and refuses others', () => {
    expect(sampleStyle('mnist')).toEqual({ size: 28, box: 20, centre: 'mass' });
    expect(sampleStyle('fashion-mnist')).toEqual({ size: 28, box: 28, centre: 'box' });
    expect(() => sampleStyle('cifar10')).toThrow(DataError);
  });
});
