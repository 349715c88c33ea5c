import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DataError } from './data-error.js';
import { loadDataset, loadDatasetFiles, loadSplit } from './load.js';
import { getDatasetInfo } from './registry.js';
import { sha256Hex } from './sha256.js';
import { gzip, makeIdxImages, makeIdxLabels, syntheticPixel } from './testing/idx-fixtures.js';

const SHARED_DATA = fileURLToPath(new URL('../../../../shared/data', import.meta.url));

describe('loadDataset from the shared MNIST copy', () => {
  it('verifies all four files and finds 60000 train and 10000 test samples, the first labelled 5', async () => {
    const ds = await loadDataset('mnist', { dataDir: SHARED_DATA });
    expect(ds.name).toBe('mnist');
    expect(ds.classNames[5]).toBe('5');
    expect([ds.train.count, ds.train.rows, ds.train.cols, ds.train.features]).toEqual([60000, 28, 28, 784]);
    expect(ds.train.pixels.length).toBe(60000 * 784);
    expect(ds.test.count).toBe(10000);
    expect(ds.train.labels[0]).toBe(5);
  });
  it('loads one split alone, equal to the same split of the whole dataset', async () => {
    const ds = await loadDataset('mnist', { dataDir: SHARED_DATA });
    const train = await loadSplit('mnist', 'train', { dataDir: SHARED_DATA });
    const test = await loadSplit('mnist', 'test', { dataDir: SHARED_DATA });
    expect(sha256Hex(train.pixels)).toBe(sha256Hex(ds.train.pixels));
    expect(sha256Hex(test.labels)).toBe(sha256Hex(ds.test.labels));
    expect([train.count, test.count]).toEqual([60000, 10000]);
  });
});

describe('loadDatasetFiles with synthetic files', () => {
  let root: string;
  const trainLabels = [3, 1, 4, 1, 5];
  const writeSynthetic = async (compress: boolean) => {
    await mkdir(join(root, 'mnist'), { recursive: true });
    const files: Array<[string, Uint8Array]> = [
      ['train-images-idx3-ubyte', makeIdxImages(5, 2, 3)],
      ['train-labels-idx1-ubyte', makeIdxLabels(trainLabels)],
      ['t10k-images-idx3-ubyte', makeIdxImages(2, 2, 3)],
      ['t10k-labels-idx1-ubyte', makeIdxLabels([9, 0])],
    ];
    for (const [name, bytes] of files) {
      await writeFile(join(root, 'mnist', compress ? `${name}.gz` : name), compress ? gzip(bytes) : bytes);
    }
  };

  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'gradq-load-'));
  });
  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('parses and pairs gzipped files without verification', async () => {
    await writeSynthetic(true);
    const ds = await loadDatasetFiles(root, 'mnist', { verify: false });
    expect([ds.train.count, ds.train.rows, ds.train.cols, ds.train.features]).toEqual([5, 2, 3, 6]);
    expect([...ds.train.labels]).toEqual(trainLabels);
    expect(ds.train.pixels[29]).toBe(syntheticPixel(29));
    expect([...ds.test.labels]).toEqual([9, 0]);
  });

  it('falls back to the uncompressed file when no .gz exists', async () => {
    await writeSynthetic(false);
    const ds = await loadDatasetFiles(root, 'mnist', { verify: false });
    expect(ds.test.count).toBe(2);
  });

  it('names the file and both hashes when the content does not match the registry', async () => {
    await writeSynthetic(true);
    const path = join(root, 'mnist', 'train-images-idx3-ubyte.gz');
    const err = await loadDataset('mnist', { dataDir: root }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DataError);
    expect((err as Error).message).toBe(
      `${path}: SHA-256 of the decompressed content is ${sha256Hex(makeIdxImages(5, 2, 3))}, expected ${getDatasetInfo('mnist').trainImages.sha256}; the file is corrupt or not the official one: delete it and download again`,
    );
  });

  it('says which paths it looked for and suggests --data-dir when a file is missing', async () => {
    const err = await loadDataset('fashion-mnist', { dataDir: root }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DataError);
    const gz = join(root, 'fashion-mnist', 'train-images-idx3-ubyte.gz');
    expect((err as Error).message).toBe(
      `fashion-mnist: train-images-idx3-ubyte.gz not found (looked for ${gz} and ${gz.slice(0, -3)}); give a data root: a folder that holds fashion-mnist/`,
    );
  });

  it('hints at the parent folder when --data-dir names the dataset folder itself', async () => {
    await writeSynthetic(true);
    const inner = join(root, 'mnist');
    await expect(loadDatasetFiles(inner, 'mnist', { verify: false })).rejects.toThrow(
      `(${inner} looks like the mnist folder itself: pass its parent)`,
    );
  });

  it('reports an unknown dataset before touching the disk', async () => {
    await expect(loadDataset('cifar', { dataDir: root })).rejects.toThrow('unknown dataset "cifar"');
  });
});
