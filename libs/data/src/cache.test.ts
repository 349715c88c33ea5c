import { homedir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { datasetFilePath, defaultCacheDir } from './cache.js';

describe('defaultCacheDir', () => {
  it('uses GRADQ_DATA_DIR when set', () => {
    expect(defaultCacheDir({ GRADQ_DATA_DIR: '/data/gradq' })).toBe('/data/gradq');
  });

  it('falls back to ~/.cache/gradq when GRADQ_DATA_DIR is unset or empty', () => {
    expect(defaultCacheDir({})).toBe(join(homedir(), '.cache', 'gradq'));
    expect(defaultCacheDir({ GRADQ_DATA_DIR: '' })).toBe(join(homedir(), '.cache', 'gradq'));
  });
});

describe('datasetFilePath', () => {
  it('puts files at <root>/<dataset>/<file>.gz', () => {
    expect(datasetFilePath('/c', 'mnist', 'train-images-idx3-ubyte')).toBe('/c/mnist/train-images-idx3-ubyte.gz');
  });
});
