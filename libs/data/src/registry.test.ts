import { describe, expect, it } from 'vitest';
import { DataError } from './data-error.js';
import { DATASET_NAMES, datasetFiles, getDatasetInfo } from './registry.js';

describe('registry', () => {
  it('knows mnist and fashion-mnist', () => {
    expect([...DATASET_NAMES]).toEqual(['mnist', 'fashion-mnist']);
  });

  it.each(DATASET_NAMES)('%s has four files with SHA-256 hashes, ten class names and mirrors ending in /', (name) => {
    const info = getDatasetInfo(name);
    expect(datasetFiles(info).map((f) => f.name)).toEqual([
      'train-images-idx3-ubyte',
      'train-labels-idx1-ubyte',
      't10k-images-idx3-ubyte',
      't10k-labels-idx1-ubyte',
    ]);
    for (const f of datasetFiles(info)) expect(f.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(info.classNames).toHaveLength(10);
    expect(info.mirrors.length).toBeGreaterThanOrEqual(2);
    for (const m of info.mirrors) expect(m).toMatch(/^https?:\/\/.+\/$/);
  });

  it('tries the ossci mirror first for mnist', () => {
    expect(getDatasetInfo('mnist').mirrors[0]).toBe('https://ossci-datasets.s3.amazonaws.com/mnist/');
  });

  it('names fashion-mnist class 9 Ankle boot', () => {
    expect(getDatasetInfo('fashion-mnist').classNames[9]).toBe('Ankle boot');
  });

  it('rejects an unknown dataset and lists the known ones', () => {
    expect(() => getDatasetInfo('foo')).toThrow(new DataError('unknown dataset "foo" (known: mnist, fashion-mnist)'));
  });

  it('does not treat inherited object keys as datasets', () => {
    expect(() => getDatasetInfo('toString')).toThrow(DataError);
  });
});
