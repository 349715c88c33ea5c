import { ConfigError, type Model } from '@gradq/nn';

/** What a model must fit: the images (one channel, rows × cols) and the classes of a dataset. */
export interface DataShape {
  name: string;
  rows: number;
  cols: number;
  classes: number;
}

/**
 * Throws ConfigError (about the model) unless the model takes this dataset's images and gives one output per class:
 * an MLP its rows·cols pixels, a CNN exactly [1, rows, cols] (not merely as many floats in another shape). The one
 * check that training, evaluation, prediction and every worker run.
 */
export function checkModelFits(model: Model, data: DataShape): void {
  const input = model.layers[0].inputShape;
  const fits =
    input.length === 1
      ? input[0] === data.rows * data.cols
      : input.length === 3 && input[0] === 1 && input[1] === data.rows && input[2] === data.cols;
  if (!fits) {
    const want = input.length === 1 ? `${data.rows * data.cols} inputs` : `1x${data.rows}x${data.cols} images`;
    throw new ConfigError(`model ${model.name} takes [${input.join(', ')}] but ${data.name} has ${want}`, { about: 'model' });
  }
  if (model.classes !== data.classes) {
    throw new ConfigError(`model ${model.name} has ${model.classes} outputs but ${data.name} has ${data.classes} classes`, {
      about: 'model',
    });
  }
}
