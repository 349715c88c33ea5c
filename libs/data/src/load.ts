import { access, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { datasetFilePath, defaultCacheDir } from './cache.js';
import { DataError } from './data-error.js';
import { ensureDataset, type EnsureDatasetOptions } from './download.js';
import { decompressIdx, pairImagesLabels, readIdxImages, readIdxLabels } from './idx.js';
import { getDatasetInfo, type DatasetFile } from './registry.js';
import { verifySha256 } from './sha256.js';
import type { Dataset, Split } from './split.js';

export interface LoadDatasetOptions extends EnsureDatasetOptions {
  /** A data root holding `<name>/<file>.gz` (the --data-dir flag); when set, the network is never used. */
  dataDir?: string;
}

/**
 * Loads dataset `name`: from `dataDir` if given (verified, no network), else from the cache after
 * ensureDataset has downloaded and verified whatever was missing.
 */
export async function loadDataset(name: string, options: LoadDatasetOptions = {}): Promise<Dataset> {
  const { root, verify } = await datasetRoot(name, options);
  return loadDatasetFiles(root, name, { verify });
}

/** Loads one split of dataset `name` (as loadDataset does), e.g. only 'train' in a worker, which never evaluates. */
export async function loadSplit(name: string, which: SplitName, options: LoadDatasetOptions = {}): Promise<Split> {
  const { root, verify } = await datasetRoot(name, options);
  return loadSplitFiles(root, name, which, { verify });
}

export type SplitName = 'train' | 'test';

/** Where the files of dataset `name` are, and whether they still need their hashes checked. */
async function datasetRoot(name: string, options: LoadDatasetOptions): Promise<{ root: string; verify: boolean }> {
  if (options.dataDir !== undefined) return { root: options.dataDir, verify: true };
  // ensureDataset verifies every file's hash as it downloads or finds it.
  return { root: await ensureDataset(name, { ...options, cacheDir: options.cacheDir ?? defaultCacheDir() }), verify: false };
}

/** Reads, optionally verifies, parses and pairs the four IDX files of dataset `name` below data root `root`. */
export async function loadDatasetFiles(root: string, name: string, options: { verify: boolean }): Promise<Dataset> {
  const info = getDatasetInfo(name);
  return {
    name: info.name,
    classNames: info.classNames,
    train: await loadSplitFiles(root, name, 'train', options),
    test: await loadSplitFiles(root, name, 'test', options),
  };
}

/** Reads, optionally verifies, parses and pairs the images and labels of one split. */
async function loadSplitFiles(root: string, name: string, which: SplitName, options: { verify: boolean }): Promise<Split> {
  const info = getDatasetInfo(name);
  const [images, labels] = which === 'train' ? [info.trainImages, info.trainLabels] : [info.testImages, info.testLabels];
  const read = async (file: DatasetFile): Promise<{ raw: Uint8Array; path: string }> => {
    const { bytes, path } = await readDatasetFile(root, info.name, file.name);
    return { raw: decompressIdx(bytes, path), path };
  };
  // Structure first (magic, dimensions, truncation, counts), so that a damaged file gets the specific error;
  // then the content hash, which catches everything else.
  const img = await read(images);
  const lbl = await read(labels);
  const paired = pairImagesLabels(readIdxImages(img.raw, img.path), readIdxLabels(lbl.raw, lbl.path), {
    images: img.path,
    labels: lbl.path,
  });
  if (options.verify) {
    verifySha256(img.raw, images.sha256, img.path);
    verifySha256(lbl.raw, labels.sha256, lbl.path);
  }
  return paired;
}

/** Reads `<root>/<dataset>/<file>.gz`, or the uncompressed `<file>` when only that exists. */
async function readDatasetFile(root: string, dataset: string, file: string): Promise<{ bytes: Uint8Array; path: string }> {
  const gz = datasetFilePath(root, dataset, file);
  const plain = join(root, dataset, file);
  for (const path of [gz, plain]) {
    try {
      return { bytes: await readFile(path), path };
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EISDIR') throw new DataError(`${dataset}: ${path} is a folder, not the file ${file}`, { about: 'dataDir' });
      if (code !== 'ENOENT') throw err;
    }
  }
  // A common slip: the data root names the dataset folder itself rather than the folder that holds it.
  const hint =
    (await exists(join(root, `${file}.gz`))) || (await exists(join(root, file)))
      ? ` (${root} looks like the ${dataset} folder itself: pass its parent)`
      : '';
  throw new DataError(
    `${dataset}: ${file}.gz not found (looked for ${gz} and ${plain}); give a data root: a folder that holds ${dataset}/${hint}`,
    { about: 'dataDir' },
  );
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}
