export { DataError } from './data-error.js';
export { DownloadError } from './download-error.js';
export type { Dataset, Split } from './split.js';
export {
  decompressIdx,
  isGzip,
  pairImagesLabels,
  parseIdx,
  readIdxImages,
  readIdxLabels,
  type IdxArray,
  type IdxImages,
  type IdxLabels,
} from './idx.js';
export { DATASET_NAMES, datasetFiles, getDatasetInfo, type DatasetFile, type DatasetInfo, type DatasetName } from './registry.js';
export { datasetFilePath, defaultCacheDir } from './cache.js';
export { sha256Hex, verifySha256 } from './sha256.js';
export { ensureDataset, type EnsureDatasetOptions, type ProgressReporter } from './download.js';
export { loadDataset, loadDatasetFiles, loadSplit, type LoadDatasetOptions, type SplitName } from './load.js';
export { gatherBatch, limitSamples, type SampleLimitNames } from './batch.js';
export { epochOrder } from './epoch-order.js';
export { MAX_SHIFT, sampleShift, shiftImages } from './augment.js';
export { checkBatchSize, checkSampleCount, checkShardCount, planStep, shardRange, stepsPerEpoch, type StepPlan } from './shards.js';
export type { GrayImage, PixelBox } from './image/gray-image.js';
export { decodeImage, rgbaToGray, MAX_IMAGE_PIXELS } from './image/decode-image.js';
export { extractInk, type Ink } from './image/ink.js';
export { inkBox, INK_THRESHOLD, SPECK_SHARE } from './image/ink-box.js';
export { resampleArea, type SamplingGrid } from './image/resample-area.js';
export { SAMPLE_STYLES, sampleStyle, type SampleStyle } from './image/sample-style.js';
export { toSample, type ImageSample } from './image/to-sample.js';
