import { type FlagSpecs } from '@gradq/cli';
import { DATASET_NAMES } from '@gradq/data';

/** Flags of `gradq predict`; the images are its operands. */
export const PREDICT_FLAGS = {
  model: { type: 'string', placeholder: 'FILE', help: 'model file saved by gradq train --out (required)' },
  dataset: {
    type: 'string', choices: DATASET_NAMES,
    help: 'class names and sample style (MNIST or Fashion-MNIST preprocessing) to use (default: the dataset the model was trained on)',
  }, // prettier-ignore
  top: { type: 'int', min: 1, default: 3, placeholder: 'K', help: 'probabilities to show per image, highest first' },
  json: { type: 'boolean', help: 'print the results as one JSON object' },
} satisfies FlagSpecs;
