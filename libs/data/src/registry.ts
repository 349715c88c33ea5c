import { DataError } from './data-error.js';

/** The datasets gradq knows, by the name used on the command line and as the cache folder. */
export const DATASET_NAMES = ['mnist', 'fashion-mnist'] as const;
export type DatasetName = (typeof DATASET_NAMES)[number];

/** One IDX file of a dataset: stored and downloaded as `${name}.gz`, verified by the SHA-256 of its decompressed bytes. */
export interface DatasetFile {
  name: string;
  sha256: string;
}

export interface DatasetInfo {
  name: DatasetName;
  classNames: readonly string[];
  /** Base URLs (ending in '/'), tried in order; a file's URL is base + `${file.name}.gz`. */
  mirrors: readonly string[];
  trainImages: DatasetFile;
  trainLabels: DatasetFile;
  testImages: DatasetFile;
  testLabels: DatasetFile;
}

const REGISTRY: Record<DatasetName, DatasetInfo> = {
  mnist: {
    name: 'mnist',
    classNames: ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'],
    mirrors: ['https://ossci-datasets.s3.amazonaws.com/mnist/', 'https://storage.googleapis.com/cvdf-datasets/mnist/'],
    trainImages: {
      name: 'train-images-idx3-ubyte',
      sha256: 'ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db',
    },
    trainLabels: {
      name: 'train-labels-idx1-ubyte',
      sha256: '65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5',
    },
    testImages: {
      name: 't10k-images-idx3-ubyte',
      sha256: '0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7',
    },
    testLabels: {
      name: 't10k-labels-idx1-ubyte',
      sha256: 'ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2',
    },
  },
  'fashion-mnist': {
    name: 'fashion-mnist',
    classNames: ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot'],
    mirrors: [
      'https://fashion-mnist.s3-website.eu-central-1.amazonaws.com/',
      'http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/',
    ],
    trainImages: {
      name: 'train-images-idx3-ubyte',
      sha256: 'c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888',
    },
    trainLabels: {
      name: 'train-labels-idx1-ubyte',
      sha256: 'bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9',
    },
    testImages: {
      name: 't10k-images-idx3-ubyte',
      sha256: '5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b',
    },
    testLabels: {
      name: 't10k-labels-idx1-ubyte',
      sha256: '0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34',
    },
  },
};

/** The registry entry for `name`; throws DataError for an unknown name. */
export function getDatasetInfo(name: string): DatasetInfo {
  if (!Object.hasOwn(REGISTRY, name)) {
    throw new DataError(`unknown dataset ${JSON.stringify(name)} (known: ${DATASET_NAMES.join(', ')})`);
  }
  return REGISTRY[name as DatasetName];
}

/** The four files of a dataset, in the order they are downloaded: train images, train labels, test images, test labels. */
export function datasetFiles(info: DatasetInfo): DatasetFile[] {
  return [info.trainImages, info.trainLabels, info.testImages, info.testLabels];
}
