import { getDatasetInfo, type DatasetName } from '../registry.js';

/** How a dataset's samples were made from their source images, to make samples the same way from any image. */
export interface SampleStyle {
  /** Side of the square sample, in pixels. */
  size: number;
  /** The object's longer side is scaled to this many pixels, its aspect kept. */
  box: number;
  /** Where the scaled object goes, moved by whole pixels: its centre of mass, or its bounding box, to the middle. */
  centre: 'mass' | 'box';
}

/**
 * MNIST: digits scaled to fit a 20×20 box (anti-aliased), then centred by centre of mass in 28×28 (LeCun et al.).
 * Fashion-MNIST: trimmed, longer edge resized to 28, centred in 28×28 (Xiao et al. 2017).
 */
export const SAMPLE_STYLES: Record<DatasetName, SampleStyle> = {
  mnist: { size: 28, box: 20, centre: 'mass' },
  'fashion-mnist': { size: 28, box: 28, centre: 'box' },
};

/** The sample style of dataset `name`; DataError for an unknown one. */
export function sampleStyle(name: string): SampleStyle {
  return SAMPLE_STYLES[getDatasetInfo(name).name];
}
